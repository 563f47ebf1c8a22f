/**
 * docker-compose.yml and the Dockerfile's targets against what the services actually read and
 * load, with no Docker engine: which variables each service's config reads is recorded by handing
 * its loader an environment that notes every key asked for, so the check follows the code as it
 * changes.
 * Each failure names the service and the variable or file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { stackServices, type ServiceSpec } from '../../gateway/src/stack/services.ts';
import { ROOT, dockerIgnored, installedAs, readDockerfile, runtimeGraph, type Dockerfile } from './image.ts';

/** URLs a user's browser follows, so they name the host it sees, not a compose service. */
const BROWSER_FACING = new Set(['PORTAL_GATEWAY_URL']);

type Env = Record<string, string>;

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const services = stackServices();
const built = Object.entries(compose.services).filter(([, service]) => service.build);

/** The listening port of services that come as images, on their images' defaults. */
const IMAGE_PORTS: Record<string, number> = { postgres: 5432, redis: 6379 };

/**
 * What an operator sets for real use (README, Deploy): the whole list, so that every service
 * must start on it. The values only have to be well formed.
 */
const REAL_USE: Env = {
  AUTH_MODE: 'jwt',
  GATEWAY_SECRET: 'gateway-secret-of-the-site',
  CALLBACK_SECRET: 'callback-secret-of-the-site',
  JWT_JWKS_URL: 'https://iam.example.org/jwk',
  JWT_ISSUER: 'https://iam.example.org/',
  JWT_AUDIENCE: 'srcnet-execution',
  SKAHA_TOKEN: 'token-of-the-skaha-worker',
  SKAHA_CALLBACK_SECRET: 'skaha-callback-secret-of-the-site',
  PREPAREDATA_TOKEN: 'token-of-the-preparedata-worker',
  PREPAREDATA_CALLBACK_SECRET: 'preparedata-callback-secret-of-the-site',
};

/** Compose's interpolation of `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}` and `$$`. */
function interpolate(text: string, host: Env): string {
  return text.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g,
    (match, name: string, colon: string, operator: string, argument: string) => {
      if (match === '$$') return '$';
      const value = host[name];
      const unset = value === undefined || (colon === ':' && value === '');
      if (!operator) return value ?? '';
      if (!unset) return value!;
      if (operator === '-') return argument;
      throw new Error(`${name} must be set: ${argument}`);
    },
  );
}

/** A service's environment as compose hands it over, with `host` as the shell's environment. */
function composeEnv(name: string, host: Env = {}): Env {
  const environment = compose.services[name]?.environment ?? {};
  const pairs = Array.isArray(environment)
    ? environment.map((item) => [item.split('=')[0]!, item.slice(item.indexOf('=') + 1)])
    : Object.entries(environment).map(([key, value]) => [key, value === null ? '' : String(value)]);
  return Object.fromEntries(pairs.map(([key, value]) => [key, interpolate(value!, host)]));
}

type Loader = (env: Record<string, string | undefined>) => { port?: number };

interface Read {
  keys: Set<string>;
  config?: { port?: number };
  error?: unknown;
}

/** Runs a loader on `env`, noting every variable it asks for. */
function read(loader: Loader, env: Env): Read {
  const keys = new Set<string>();
  const recording = new Proxy(env, {
    get(target, key, receiver) {
      if (typeof key === 'string') keys.add(key);
      return Reflect.get(target, key, receiver) as unknown;
    },
    has(target, key) {
      if (typeof key === 'string') keys.add(key);
      return Reflect.has(target, key);
    },
    ownKeys() {
      throw new Error('the loader lists the environment; this test can only follow reads by name');
    },
  });
  try {
    return { keys, config: loader(recording) };
  } catch (error) {
    return { keys, error };
  }
}

interface Built {
  spec: ServiceSpec | undefined;
  dockerfilePath: string;
  dockerfile: Dockerfile;
  entry: string | undefined;
  loader: Loader | undefined;
  /** Variables read by the loader (in dev mode and for real use) or by name anywhere the entry loads. */
  reads: Set<string>;
  port: number | undefined;
}
const images = new Map<string, Built>();

beforeAll(async () => {
  for (const [name, service] of built) {
    const { context, dockerfile: file = 'Dockerfile', target } = service.build!;
    const dockerfilePath = join(context, file);
    const dockerfile = existsSync(join(ROOT, dockerfilePath))
      ? readDockerfile(join(ROOT, dockerfilePath), target)
      : { cmd: [], copies: [], healthcheck: [], extras: [] };
    const entry = dockerfile.cmd.find((arg) => arg.endsWith('.ts'));
    const configFile = entry && join(ROOT, dirname(entry), 'config.ts');
    const module: Record<string, unknown> =
      configFile && existsSync(configFile) ? ((await import(configFile)) as Record<string, unknown>) : {};
    // The loader by its name: loadConfig (loadPortalConfig, …) for services, optionsFromEnv for emulators.
    const loader = Object.entries(module).find(
      ([key, value]) => typeof value === 'function' && /^(load\w*Config|optionsFromEnv)$/.test(key),
    )?.[1] as Loader | undefined;
    const reads = new Set<string>();
    let port: number | undefined;
    if (loader) {
      const dev = read(loader, composeEnv(name));
      const realUse = read(loader, composeEnv(name, REAL_USE));
      for (const key of [...dev.keys, ...realUse.keys]) reads.add(key);
      port = dev.config?.port;
    }
    if (entry && existsSync(join(ROOT, entry)))
      for (const file of runtimeGraph(entry).files.filter((f) => f.endsWith('.ts')))
        for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(
          /process\.env(?:\.(\w+)|\[['"](\w+)['"]\])/g,
        ))
          reads.add((match[1] ?? match[2])!);
    images.set(name, {
      spec: services.find((spec) => spec.name === name),
      dockerfilePath,
      dockerfile,
      entry,
      loader,
      reads,
      port,
    });
  }
});

function listeningPort(name: string): number | undefined {
  const image = compose.services[name]?.image;
  return images.get(name)?.port ?? (image ? IMAGE_PORTS[image.split(':')[0]!] : undefined);
}

describe('docker-compose.yml', () => {
  it('builds every service of the stack from a Dockerfile that runs the same entry as npm start', () => {
    const problems: string[] = [];
    for (const spec of services) {
      const image = images.get(spec.name);
      if (!image) {
        problems.push(`${spec.name}: no compose service built from a Dockerfile`);
        continue;
      }
      if (!existsSync(join(ROOT, image.dockerfilePath)))
        problems.push(`${spec.name}: ${image.dockerfilePath} does not exist`);
      else if (image.entry !== spec.entry)
        problems.push(
          `${spec.name}: ${image.dockerfilePath} runs ${image.entry}, npm start runs ${spec.entry}`,
        );
      if (!image.loader)
        problems.push(
          `${spec.name}: ${image.entry ? dirname(image.entry) : '?'}/config.ts exports no loader (load…Config or optionsFromEnv)`,
        );
    }
    expect(problems).toEqual([]);
  });

  it('sets only variables the service reads', () => {
    const problems: string[] = [];
    for (const [name, image] of images)
      for (const variable of Object.keys(composeEnv(name)))
        if (!image.reads.has(variable))
          problems.push(`${name}: ${variable} is set, but ${image.entry ?? 'the service'} never reads it`);
    expect(problems).toEqual([]);
  });

  it('sets what npm start sets, but the SQLite paths (the images keep their data in /app/data)', () => {
    const problems: string[] = [];
    for (const spec of services) {
      const set = composeEnv(spec.name);
      for (const variable of Object.keys(spec.env))
        if (!/SQLITE_PATH$/.test(variable) && !(variable in set))
          problems.push(`${spec.name}: npm start sets ${variable}=${spec.env[variable]}, compose does not`);
    }
    expect(problems).toEqual([]);
  });

  it('gives every service a valid configuration in dev mode and with the real-use variables', () => {
    const problems: string[] = [];
    for (const [name, image] of images) {
      if (!image.loader) continue;
      for (const [mode, host] of [
        ['dev mode', {}],
        ['AUTH_MODE=jwt with the real-use variables', REAL_USE],
      ] as const) {
        const { error } = read(image.loader, composeEnv(name, host));
        if (error) problems.push(`${name}, ${mode}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('stops a service under AUTH_MODE=jwt when its secrets are not given, rather than use dev secrets', () => {
    const problems: string[] = [];
    for (const [name, image] of images) {
      // A service that holds no secret (the portal) has nothing to fall back on.
      const holdsSecrets = [...image.reads].some((variable) => /SECRET|TOKEN/.test(variable));
      if (!image.loader || !image.reads.has('AUTH_MODE') || !holdsSecrets) continue;
      const { error } = read(image.loader, composeEnv(name, { AUTH_MODE: 'jwt' }));
      if (!error) problems.push(`${name}: starts under AUTH_MODE=jwt with none of its secrets set`);
    }
    expect(problems).toEqual([]);
  });

  it('points every URL at a compose service on the port it listens on', () => {
    const problems: string[] = [];
    const defaultPorts: Record<string, number> = {
      'http:': 80,
      'https:': 443,
      'postgres:': 5432,
      'redis:': 6379,
    };
    for (const name of Object.keys(compose.services))
      for (const [variable, value] of Object.entries(composeEnv(name))) {
        if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || BROWSER_FACING.has(variable)) continue;
        const url = new URL(value);
        const port = url.port ? Number(url.port) : defaultPorts[url.protocol];
        if (!compose.services[url.hostname])
          problems.push(`${name}: ${variable}=${value} names ${url.hostname}, which is no compose service`);
        else if (port !== listeningPort(url.hostname))
          problems.push(
            `${name}: ${variable}=${value} uses port ${port}, ${url.hostname} listens on ${listeningPort(url.hostname)}`,
          );
      }
    expect(problems).toEqual([]);
  });

  it('checks health where the service answers it and waits only on services that exist', () => {
    const problems: string[] = [];
    for (const [name, service] of Object.entries(compose.services)) {
      const spec = services.find((s) => s.name === name);
      const url = service.healthcheck?.test.join(' ').match(/http:\/\/127\.0\.0\.1:(\d+)(\/[\w/]*)/);
      if (url && Number(url[1]) !== listeningPort(name))
        problems.push(
          `${name}: the health check asks port ${url[1]}, the service listens on ${listeningPort(name)}`,
        );
      if (url && spec && url[2] !== spec.health)
        problems.push(`${name}: the health check asks ${url[2]}, npm start waits on ${spec.health}`);
      // The short form, a list of names, waits for the services to start only.
      const dependencies: Record<string, { condition?: string }> = Array.isArray(service.depends_on)
        ? Object.fromEntries(service.depends_on.map((d) => [d, { condition: 'service_started' }]))
        : (service.depends_on ?? {});
      for (const [dependency, { condition }] of Object.entries(dependencies)) {
        if (!compose.services[dependency])
          problems.push(`${name}: depends on ${dependency}, no compose service`);
        else if (condition === 'service_healthy' && !compose.services[dependency].healthcheck)
          problems.push(`${name}: waits for ${dependency} to be healthy, which has no health check`);
      }
      for (const mapping of service.ports ?? []) {
        const inside = Number(mapping.split(':').at(-1));
        if (inside !== listeningPort(name))
          problems.push(`${name}: publishes port ${inside}, the service listens on ${listeningPort(name)}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('the Dockerfiles', () => {
  it('copy every file the entry loads and run it as npm start does', () => {
    const problems: string[] = [];
    for (const [name, image] of images) {
      if (!image.entry || !existsSync(join(ROOT, image.entry))) {
        problems.push(
          `${name}: ${image.dockerfilePath} runs ${image.entry ?? 'no .ts entry'}, which does not exist`,
        );
        continue;
      }
      if (image.dockerfile.cmd.join(' ') !== `node --conditions=source --import tsx ${image.entry}`)
        problems.push(`${name}: CMD is ${image.dockerfile.cmd.join(' ')}`);
      const graph = runtimeGraph(image.entry);
      for (const missing of graph.missing) problems.push(`${name}: ${missing} does not resolve`);
      const copied = image.dockerfile.copies.map((source) => source.replace(/\/$/, ''));
      for (const file of graph.files) {
        if (!copied.some((source) => file === source || file.startsWith(`${source}/`)))
          problems.push(`${name}: ${image.dockerfilePath} does not copy ${file}`);
        else if (dockerIgnored(file)) problems.push(`${name}: .dockerignore leaves out ${file}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('install every package the entry imports (and tsx) for production or as a runtime extra', () => {
    const problems: string[] = [];
    for (const [name, image] of images) {
      if (!image.entry || !existsSync(join(ROOT, image.entry))) continue;
      const packages = runtimeGraph(image.entry).packages;
      packages.set('tsx', 'the CMD (--import tsx)');
      for (const [pkg, importer] of packages) {
        if (image.dockerfile.extras.includes(pkg)) continue;
        const installed = installedAs(pkg, importer.endsWith('.ts') ? importer : 'package.json');
        if (installed !== 'production')
          problems.push(
            `${name}: ${pkg}, imported by ${importer}, is ${installed === 'dev' ? 'a devDependency' : 'not in package-lock.json'}; ` +
              `npm ci --omit=dev leaves it out (declare it in dependencies, or add it to RUNTIME_EXTRAS in ${image.dockerfilePath})`,
          );
      }
    }
    expect(problems).toEqual([]);
  });

  it('check health on the port the service reads and the path npm start waits on', () => {
    const problems: string[] = [];
    for (const [name, image] of images) {
      const command = image.dockerfile.healthcheck.join(' ');
      const match = command.match(/process\.env\.(\w+) \|\| (\d+)\) \+ '(\/[\w/]*)'/);
      if (!match) {
        problems.push(`${name}: ${image.dockerfilePath} has no HEALTHCHECK of the usual form`);
        continue;
      }
      const [, variable, fallback, path] = match;
      if (!image.reads.has(variable!))
        problems.push(`${name}: the HEALTHCHECK's ${variable} is not read by the service`);
      if (image.spec && Number(fallback) !== image.spec.port)
        problems.push(`${name}: the HEALTHCHECK's default port ${fallback} is not ${image.spec.port}`);
      if (image.spec && path !== image.spec.health)
        problems.push(`${name}: the HEALTHCHECK asks ${path}, npm start waits on ${image.spec.health}`);
    }
    expect(problems).toEqual([]);
  });
});

describe('README', () => {
  it('names every real-use variable in its Deploy section', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const deploy = readme.slice(
      readme.indexOf('## Deploy'),
      readme.indexOf('\n## ', readme.indexOf('## Deploy') + 1),
    );
    expect(readme.includes('## Deploy'), 'README.md has no "## Deploy" section').toBe(true);
    expect(Object.keys(REAL_USE).filter((variable) => !deploy.includes(`\`${variable}\``))).toEqual([]);
  });
});
