import { canonicalKind, KINDS } from './kinds.ts';
import type { ValidationIssue } from './validate.ts';

/**
 * Brings an ExecutionRequest or update written for an older schema up to 1.0.7, so that one
 * validator and one broker serve every client still in the field. Each change is reported as a
 * note; a document that cannot be upgraded without guessing is refused with the path at fault.
 *
 * What changes (docs/schema.md lists the same):
 * - `type` (≤ October 2025) becomes `kind`; `computer` becomes `compute`;
 * - older kind URIs (1.0.5, October 2025, April 2025) become the 1.0.7 ones;
 * - a component's top-level `name`, `uuid` or `description` moves into `meta`;
 * - a top-level `volumes` list (≤ March 2026) moves under `compute.volumes`, one mount per entry
 *   of its `resources` (a mount with several resources mounts each under `<path>/<resource>`),
 *   dropping `cardinality`, which 1.0.7 no longer has;
 * - a storage resource's list of the data it holds (`resources`, or names in `data`) becomes a
 *   `storage` reference on each of those data resources;
 * - the request's own `name` and `description` are dropped (1.0.7 requests have none);
 * - numbers and booleans in a container's `command` or `environment` become strings, as the
 *   reference broker's JSON reader made them;
 * - an update wrapped as `{update: {...}}` is unwrapped.
 */

type Doc = Record<string, unknown>;

export interface UpgradeResult {
  document: Doc;
  notes: string[];
  issues: ValidationIssue[];
}

const COMPONENT_LISTS = ['storage', 'data'] as const;
const VOLUME_KIND = KINDS.SimpleVolumeMount!;

const isObject = (value: unknown): value is Doc =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

function nameOf(component: Doc): string | undefined {
  const meta = component.meta;
  return isObject(meta) && typeof meta.name === 'string' ? meta.name : undefined;
}

/** Upgrades one component in place of a copy: kind, `type`, and metadata fields. */
function upgradeComponent(
  component: unknown,
  path: string,
  notes: string[],
  issues: ValidationIssue[],
): unknown {
  if (!isObject(component)) return component;
  const out: Doc = { ...component };
  if (
    out.type !== undefined &&
    out.kind === undefined &&
    typeof out.type === 'string' &&
    out.type.includes('://')
  ) {
    out.kind = out.type;
    delete out.type;
    notes.push(`${path}: renamed type to kind`);
  }
  if (typeof out.kind === 'string') {
    const canonical = canonicalKind(out.kind);
    if (canonical && canonical !== out.kind) {
      notes.push(`${path}/kind: ${out.kind} is now ${canonical}`);
      out.kind = canonical;
    } else if (!canonical && out.kind.includes('://')) {
      issues.push({
        path: `${path}/kind`,
        rule: 'kind',
        message: `unknown kind ${JSON.stringify(out.kind)}`,
      });
    }
  }
  for (const field of ['name', 'uuid', 'description'] as const) {
    if (typeof out[field] === 'string') {
      const meta = isObject(out.meta) ? { ...out.meta } : {};
      if (meta[field] === undefined) meta[field] = out[field];
      out.meta = meta;
      delete out[field];
      notes.push(`${path}: moved ${field} into meta`);
    }
  }
  return out;
}

export function upgradeExecutionRequest(input: unknown): UpgradeResult {
  const notes: string[] = [];
  const issues: ValidationIssue[] = [];
  if (!isObject(input)) {
    return {
      document: {},
      notes,
      issues: [{ path: '/', rule: 'type', message: 'the document must be an object' }],
    };
  }
  const doc: Doc = { ...input };
  for (const field of ['name', 'description', 'meta'] as const) {
    if (doc[field] !== undefined) {
      delete doc[field];
      notes.push(`/${field}: dropped (a 1.0.7 request has no ${field})`);
    }
  }
  if (doc.computer !== undefined && doc.compute === undefined) {
    doc.compute = doc.computer;
    delete doc.computer;
    notes.push('/computer: renamed to compute');
  }
  if (doc.executable !== undefined) {
    doc.executable = stringifyScalars(upgradeComponent(doc.executable, '/executable', notes, issues), notes);
  }
  if (doc.compute !== undefined) doc.compute = upgradeComponent(doc.compute, '/compute', notes, issues);
  for (const list of COMPONENT_LISTS) {
    if (Array.isArray(doc[list])) {
      doc[list] = (doc[list] as unknown[]).map((item, i) =>
        upgradeComponent(item, `/${list}/${i}`, notes, issues),
      );
    }
  }
  moveStorageLists(doc, notes);
  moveTopLevelVolumes(doc, notes, issues);
  const requested =
    isObject(doc.schedule) && isObject(doc.schedule.requested) ? doc.schedule.requested : undefined;
  if (requested && Array.isArray(requested.start)) {
    const [first, ...rest] = requested.start as unknown[];
    doc.schedule = { ...(doc.schedule as Doc), requested: { ...requested, start: first } };
    notes.push(
      `/schedule/requested/start: a list is now one interval; kept the first${rest.length ? `, dropped ${rest.length}` : ''}`,
    );
  }
  return { document: doc, notes, issues };
}

function stringifyScalars(executable: unknown, notes: string[]): unknown {
  if (!isObject(executable)) return executable;
  const scalar = (value: unknown) => typeof value === 'number' || typeof value === 'boolean';
  const out = { ...executable };
  if (Array.isArray(out.command) && out.command.some(scalar)) {
    out.command = out.command.map((value) => (scalar(value) ? String(value) : value));
    notes.push('/executable/command: numbers written as strings');
  }
  if (isObject(out.environment) && Object.values(out.environment).some(scalar)) {
    out.environment = Object.fromEntries(
      Object.entries(out.environment).map(([key, value]) => [key, scalar(value) ? String(value) : value]),
    );
    notes.push('/executable/environment: numbers written as strings');
  }
  return out;
}

/** ≤ March 2026 storage named the data it held; 1.0.7 data names its storage instead. */
function moveStorageLists(doc: Doc, notes: string[]) {
  if (!Array.isArray(doc.storage) || !Array.isArray(doc.data)) return;
  const data = doc.data as Doc[];
  doc.storage = (doc.storage as Doc[]).map((storage, i) => {
    if (!isObject(storage)) return storage;
    const field = Array.isArray(storage.resources)
      ? 'resources'
      : Array.isArray(storage.data)
        ? 'data'
        : undefined;
    if (!field) return storage;
    const held = storage[field] as unknown[];
    const named = held.filter(
      (name): name is string => typeof name === 'string' && data.some((d) => nameOf(d) === name),
    );
    if (named.length === 0) return storage;
    const storageName = nameOf(storage);
    for (const name of named) {
      const item = data.find((d) => nameOf(d) === name)!;
      if (item.storage === undefined && storageName) item.storage = storageName;
    }
    const rest = { ...storage };
    delete rest[field];
    notes.push(`/storage/${i}/${field}: moved to the storage reference of ${named.join(', ')}`);
    return rest;
  });
}

function moveTopLevelVolumes(doc: Doc, notes: string[], issues: ValidationIssue[]) {
  if (!Array.isArray(doc.volumes)) return;
  const volumes = doc.volumes as unknown[];
  const compute: Doc = isObject(doc.compute) ? { ...doc.compute } : {};
  const wanted = Array.isArray(compute.volumes) ? (compute.volumes as unknown[]) : undefined;
  const mounts: Doc[] = [];
  volumes.forEach((volume, i) => {
    const path = `/volumes/${i}`;
    if (!isObject(volume)) {
      issues.push({ path, rule: 'type', message: 'a volume must be an object' });
      return;
    }
    const kind =
      typeof volume.kind === 'string'
        ? volume.kind
        : typeof volume.type === 'string'
          ? volume.type
          : undefined;
    if (kind === undefined || canonicalKind(kind) !== VOLUME_KIND) {
      issues.push({
        path: `${path}/kind`,
        rule: 'kind',
        message: kind === undefined ? 'kind is required' : `unknown volume kind ${JSON.stringify(kind)}`,
      });
      return;
    }
    const name = nameOf(volume) ?? (typeof volume.name === 'string' ? volume.name : undefined);
    if (wanted && !wanted.includes(name)) {
      notes.push(`${path}: not mounted by compute.volumes, dropped`);
      return;
    }
    const resources = Array.isArray(volume.resources)
      ? (volume.resources as unknown[]).filter((r): r is string => typeof r === 'string')
      : typeof volume.resource === 'string'
        ? [volume.resource]
        : [];
    if (resources.length === 0) {
      issues.push({
        path: `${path}/resources`,
        rule: 'required',
        message: 'a volume must name the resource it mounts',
      });
      return;
    }
    const base = typeof volume.path === 'string' ? volume.path.replace(/\/+$/, '') : undefined;
    resources.forEach((resource, n) => {
      const mount: Doc = {
        kind: VOLUME_KIND,
        meta: { name: resources.length > 1 ? `${name}-${n}` : name },
        resource,
      };
      if (base !== undefined) mount.path = resources.length > 1 ? `${base}/${resource}` : base || '/';
      if (volume.mode !== undefined) mount.mode = volume.mode;
      mounts.push(mount);
    });
    notes.push(
      `${path}: moved to /compute/volumes as ${resources.length} mount(s)` +
        (volume.cardinality !== undefined ? `; cardinality ${String(volume.cardinality)} dropped` : ''),
    );
  });
  delete doc.volumes;
  if (wanted && wanted.some((entry) => typeof entry === 'string')) compute.volumes = mounts;
  else compute.volumes = [...(wanted ?? []), ...mounts];
  doc.compute = compute;
}

/** Unwraps `{update: {...}}` and renames `type`; older updates are otherwise the same shape. */
export function upgradeUpdate(input: unknown): UpgradeResult {
  const notes: string[] = [];
  let doc: Doc = isObject(input) ? { ...input } : {};
  if (isObject(doc.update)) {
    doc = { ...doc.update };
    notes.push('/update: unwrapped');
  }
  if (typeof doc.type === 'string' && doc.kind === undefined) {
    doc.kind = doc.type;
    delete doc.type;
    notes.push('/type: renamed to kind');
  }
  return { document: doc, notes, issues: [] };
}
