/**
 * Runs services as separate Node processes (the way they run in production), stage by stage,
 * waiting for each to answer its health check; one that exits early stops the rest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ServiceSpec } from './services.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

export interface LaunchOptions {
  /** Where each service's output goes: this terminal, or `<logDir>/<name>.log`. */
  output: 'inherit' | { logDir: string };
  /** Added to every service's environment, after the parent's and before the service's own. */
  env?: Record<string, string>;
  healthTimeoutMs?: number;
  /** Called when a service stops by itself (not through `stop`). */
  onExit?: (spec: ServiceSpec, reason: string) => void;
}

export interface RunningService {
  spec: ServiceSpec;
  child: ChildProcess;
}

export interface LaunchedStack {
  services: RunningService[];
  /** SIGTERM to every service (SIGKILL after 5 s), resolved once all have exited. */
  stop(): Promise<void>;
  /** Stops one service and waits for its exit; `signal` SIGKILL simulates a crash. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Stops one service as `kill` does, starts it again and waits until it answers its health check. */
  restart(name: string, signal?: NodeJS.Signals): Promise<void>;
}

async function waitHealthy(spec: ServiceSpec, child: ChildProcess, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${spec.name} exited (${child.signalCode ?? `code ${child.exitCode}`}) while starting`);
    try {
      const response = await fetch(`http://127.0.0.1:${spec.port}${spec.health}`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(
    `${spec.name} did not answer http://127.0.0.1:${spec.port}${spec.health} within ${timeoutMs / 1000} s`,
  );
}

const exited = (child: ChildProcess) =>
  new Promise<void>((done) =>
    child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done()),
  );

export async function launchStack(specs: ServiceSpec[], options: LaunchOptions): Promise<LaunchedStack> {
  const services: RunningService[] = [];
  const stopping = new Set<ChildProcess>();

  function start(spec: ServiceSpec): RunningService {
    const logged = options.output !== 'inherit';
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', spec.entry], {
      cwd: ROOT,
      env: { ...process.env, ...options.env, ...spec.env },
      stdio: ['ignore', logged ? 'pipe' : 'inherit', logged ? 'pipe' : 'inherit'],
    });
    if (options.output !== 'inherit') {
      const log = createWriteStream(join(options.output.logDir, `${spec.name}.log`), { flags: 'a' });
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
    }
    child.once('exit', (code, signal) => {
      if (!stopping.has(child)) options.onExit?.(spec, signal ?? `exit code ${code}`);
    });
    const service = { spec, child };
    services.push(service);
    return service;
  }

  async function stopChildren(children: ChildProcess[], signal: NodeJS.Signals = 'SIGTERM') {
    for (const child of children) {
      stopping.add(child);
      child.kill(signal);
    }
    const force = setTimeout(() => children.forEach((child) => child.kill('SIGKILL')), 5000);
    await Promise.all(children.map(exited));
    clearTimeout(force);
  }

  const stages = [...new Set(specs.map((spec) => spec.stage))].sort((a, b) => a - b);
  try {
    for (const stage of stages) {
      const started = specs.filter((spec) => spec.stage === stage).map(start);
      await Promise.all(
        started.map(({ spec, child }) => waitHealthy(spec, child, options.healthTimeoutMs ?? 60_000)),
      );
    }
  } catch (error) {
    await stopChildren(services.map((service) => service.child));
    if (options.output === 'inherit') throw error;
    // The service's own last words say why (a configuration error, a port taken…).
    const name = /^(\S+) /.exec((error as Error).message)?.[1];
    const log = join(options.output.logDir, `${name}.log`);
    const tail = (() => {
      try {
        return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
      } catch {
        return '(no log)';
      }
    })();
    throw new Error(`${(error as Error).message}; the end of ${log}:\n${tail}`, { cause: error });
  }

  const running = (name: string) => {
    const service = services.find((item) => item.spec.name === name);
    if (!service) throw new Error(`no service ${name}`);
    return service;
  };

  return {
    services,
    stop: () => stopChildren(services.map((service) => service.child)),
    async kill(name, signal = 'SIGTERM') {
      await stopChildren([running(name).child], signal);
    },
    async restart(name, signal = 'SIGTERM') {
      const service = running(name);
      await stopChildren([service.child], signal);
      services.splice(services.indexOf(service), 1);
      const started = start(service.spec);
      await waitHealthy(started.spec, started.child, options.healthTimeoutMs ?? 60_000);
    },
  };
}
