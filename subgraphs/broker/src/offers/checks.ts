import { KINDS, schemaNameForKind, type Ivoa } from '@srcnet/execution-step-schema';
import { newId } from './ids.ts';
import { message } from './messages.ts';

/**
 * The broker's own rules for a request that is already valid against the schema: what this site
 * supports, its limits, defaults, and the links between components. Each rule breaks with a message
 * that names the component and the value; a fatal message makes the answer NO.
 */

export interface SiteLimits {
  /** The most a single step may ask for. */
  maxCores: number;
  maxMemoryGiB: number;
  maxStorageGiB: number;
  /** Kinds this site can run or stage (schema names, e.g. DockerContainer). */
  supportedKinds: readonly string[];
  /** Image locations must start with one of these registry hosts (empty: any). */
  trustedRegistries: readonly string[];
}

type Component = Record<string, unknown> & { kind: string; meta?: Ivoa.ComponentMetadata };

export interface CheckedRequest {
  executable?: Component;
  compute: Component;
  storage: Component[];
  data: Component[];
  messages: Ivoa.MessageItem[];
  fatal: boolean;
}

const PORT_PROTOCOLS = ['UDP', 'TCP', 'HTTP', 'HTTPS'];

export function checkRequest(request: Ivoa.ExecutionRequest, limits: SiteLimits, now: Date): CheckedRequest {
  const messages: Ivoa.MessageItem[] = [];
  let fatal = false;
  const error = (kind: string, template: string, values: Record<string, string | number> = {}) => {
    messages.push(message('ERROR', kind, template, values, now));
    fatal = true;
  };
  const warn = (kind: string, template: string, values: Record<string, string | number> = {}) =>
    messages.push(message('WARN', kind, template, values, now));

  const withMeta = (component: Record<string, unknown>, fallbackName?: string): Component => {
    const meta = { ...((component.meta as Ivoa.ComponentMetadata | undefined) ?? {}) };
    meta.uuid = newId();
    if (!meta.name && fallbackName) meta.name = fallbackName;
    for (const field of ['url', 'created', 'modified', 'owner', 'messages', 'options'] as const)
      delete meta[field];
    return { ...component, meta, phase: 'INITIALIZING' } as unknown as Component;
  };
  const supported = (component: Component, where: string) => {
    const name = schemaNameForKind(component.kind) ?? component.kind;
    if (!limits.supportedKinds.includes(name)) {
      error('urn:unsupported-kind', 'This site cannot provide ${where} of kind [${kind}]', {
        where,
        kind: component.kind,
      });
    }
  };

  const keys = new Map<string, string>();
  const register = (component: Component, where: string) => {
    const name = component.meta?.name;
    if (!name) return;
    if (keys.has(name)) {
      error('urn:duplicate-resource', 'Duplicate resource name [${name}] at ${where} and ${other}', {
        name,
        where,
        other: keys.get(name)!,
      });
    } else keys.set(name, where);
  };

  // Storage first, so that data and volume mounts can refer to it by name.
  const storage = (request.storage ?? []).map((item, i) => {
    const component = withMeta(item as Record<string, unknown>);
    const where = `/storage/${i}`;
    supported(component, where);
    register(component, where);
    const size = (component.size as { min?: number; max?: number } | undefined) ?? {};
    const min = size.min ?? 1;
    if (min > limits.maxStorageGiB) {
      error(
        'urn:resource-limit',
        'Storage ${where} asks for at least ${min} GiB; this site allows ${limit} GiB',
        {
          where,
          min,
          limit: limits.maxStorageGiB,
        },
      );
    }
    let max = size.max ?? min;
    if (max > limits.maxStorageGiB) {
      warn('urn:resource-limit', 'Storage ${where} maximum ${max} GiB capped at ${limit} GiB', {
        where,
        max,
        limit: limits.maxStorageGiB,
      });
      max = limits.maxStorageGiB;
    }
    component.size = { min, max: Math.max(min, max) };
    return component;
  });

  const storageRef = (ref: string) =>
    storage.find(
      (s) => s.meta?.name === ref || s.meta?.uuid === ref || (s.meta as { uuid?: string }).uuid === ref,
    );

  const data = (request.data ?? []).map((item, i) => {
    const component = withMeta(item as Record<string, unknown>);
    const where = `/data/${i}`;
    supported(component, where);
    register(component, where);
    checkData(component, where, error);
    const ref = component.storage as string | undefined;
    if (ref !== undefined) {
      const target = storageRef(ref);
      if (!target)
        error(
          'urn:resource-not-found',
          'Data ${where} names storage [${ref}], which the request does not have',
          { where, ref },
        );
      else component.storage = target.meta!.uuid;
    } else {
      const name = component.meta?.name ?? component.meta!.uuid!;
      const created = withMeta(
        { kind: KINDS.SimpleStorageResource!, size: { min: 1, max: 1 } },
        `Storage for [${name}]`,
      );
      storage.push(created);
      component.storage = created.meta!.uuid;
    }
    return component;
  });
  for (const s of storage) {
    s.data = data.filter((d) => d.storage === s.meta!.uuid).map((d) => d.meta!.uuid!);
  }

  const compute = withMeta(
    (request.compute as Record<string, unknown> | undefined) ?? {
      kind: KINDS.SimpleComputeResource!,
      cores: { min: 1, max: 1 },
      memory: { min: 1, max: 1 },
    },
    'Default compute resource',
  );
  supported(compute, '/compute');
  for (const [field, limit, unit] of [
    ['cores', limits.maxCores, 'cores'],
    ['memory', limits.maxMemoryGiB, 'GiB'],
  ] as const) {
    const range = (compute[field] as { min?: number; max?: number } | undefined) ?? {};
    const min = range.min ?? 1;
    let max = range.max ?? min;
    if (min > limit) {
      error(
        'urn:resource-limit',
        'Compute asks for at least ${min} ${unit} of ${field}; this site allows ${limit}',
        { min, unit, field, limit },
      );
    }
    if (max < min) {
      error('urn:invalid-range', 'Compute ${field} max ${max} is below its min ${min}', { field, max, min });
    }
    if (max > limit) {
      warn('urn:resource-limit', 'Compute ${field} maximum ${max} capped at ${limit}', { field, max, limit });
      max = limit;
    }
    compute[field] = { min, max: Math.max(min, max) };
  }
  compute.volumes = ((compute.volumes as Record<string, unknown>[] | undefined) ?? []).map((volume, i) => {
    const mount = withMeta(volume);
    delete mount.phase;
    const where = `/compute/volumes/${i}`;
    const ref = mount.resource as string | undefined;
    const targets = [...storage, ...data].filter(
      (c) => ref !== undefined && (c.meta?.name === ref || c.meta?.uuid === ref),
    );
    if (targets.length !== 1) {
      error(
        targets.length === 0 ? 'urn:resource-not-found' : 'urn:duplicate-resource',
        'Volume mount ${where} must name exactly one data or storage resource; [${ref}] names ${count}',
        { where, ref: ref ?? '', count: targets.length },
      );
    } else {
      mount.resource = targets[0]!.meta!.uuid;
      mount.mode ??= 'READONLY';
      mount.path ??= `/volumes/${targets[0]!.meta?.name ?? targets[0]!.meta!.uuid}`;
    }
    return mount;
  });

  let executable: Component | undefined;
  if (!request.executable) {
    error('urn:executable-required', 'The request has no executable');
  } else {
    executable = withMeta(request.executable as Record<string, unknown>);
    supported(executable, '/executable');
    checkExecutable(executable, limits, error);
  }

  return { executable, compute, storage, data, messages, fatal };
}

type Fail = (kind: string, template: string, values?: Record<string, string | number>) => void;

function checkExecutable(executable: Component, limits: SiteLimits, error: Fail) {
  const name = schemaNameForKind(executable.kind);
  if (name === 'JupyterNotebook' || name === 'SingularityContainer') {
    if (!executable.location)
      error('urn:missing-value', 'The ${kind} executable needs a location', { kind: name });
    return;
  }
  if (name !== 'DockerContainer') return;
  const docker = executable as unknown as Ivoa.DockerContainer;
  if (!docker.image?.locations?.length) error('urn:missing-value', 'The container needs image.locations');
  if (!docker.image?.digest) error('urn:missing-value', 'The container needs image.digest');
  else if (!/^sha256:[0-9a-f]{64}$/.test(docker.image.digest)) {
    error('urn:bad-value', 'The image digest [${digest}] is not a sha256 digest', {
      digest: docker.image.digest,
    });
  }
  for (const location of docker.image?.locations ?? []) {
    if (
      limits.trustedRegistries.length &&
      !limits.trustedRegistries.some((host) => location.startsWith(`${host}/`))
    ) {
      error('urn:untrusted-registry', 'The image [${location}] is not from a trusted registry (${trusted})', {
        location,
        trusted: limits.trustedRegistries.join(', '),
      });
    }
  }
  if (docker.privileged) error('urn:not-supported', 'Privileged execution is not supported');
  const platform = docker.image?.platform;
  if (platform && ((platform.architecture ?? 'amd64') !== 'amd64' || (platform.os ?? 'linux') !== 'linux')) {
    error('urn:not-supported', 'Platform ${os}/${architecture} is not supported; only linux/amd64', {
      os: platform.os ?? 'linux',
      architecture: platform.architecture ?? 'amd64',
    });
  }
  (docker.network?.ports ?? []).forEach((port, i) => {
    const where = `/executable/network/ports/${i}`;
    const protocol = (port.protocol ?? 'TCP').toUpperCase();
    if (!PORT_PROTOCOLS.includes(protocol)) {
      error('urn:bad-value', 'Port ${where} protocol [${protocol}] must be one of ${allowed}', {
        where,
        protocol,
        allowed: PORT_PROTOCOLS.join(', '),
      });
    }
    if (!port.internal?.port || port.internal.port <= 0)
      error('urn:bad-value', 'Port ${where} needs internal.port above 0', { where });
    if (port.external)
      error('urn:bad-value', 'Port ${where} must not set external; the service assigns it', { where });
  });
}

function checkData(data: Component, where: string, error: Fail) {
  const name = schemaNameForKind(data.kind);
  const need = (ok: unknown, field: string) => {
    if (!ok)
      error('urn:missing-value', 'Data ${where} of kind ${kind} needs ${field}', {
        where,
        kind: name ?? data.kind,
        field,
      });
  };
  switch (name) {
    case 'SimpleDataResource':
      need(data.location, 'location');
      break;
    case 'S3DataResource':
      need(data.endpoint, 'endpoint');
      need(data.template, 'template');
      need(data.bucket, 'bucket');
      break;
    case 'RucioDataResource': {
      const rucio = data.rucio as Record<string, unknown> | undefined;
      need(rucio?.scope, 'rucio.scope');
      need(rucio?.object, 'rucio.object');
      break;
    }
    case 'IvoaDataResource': {
      const ivoa = data.ivoa as Record<string, unknown> | undefined;
      need(ivoa?.ivoid, 'ivoa.ivoid');
      break;
    }
    case 'SkaoDataResource': {
      const skao = data.skao as Record<string, unknown> | undefined;
      need(skao?.namespace, 'skao.namespace');
      need(skao?.objectname, 'skao.objectname');
      break;
    }
  }
}
