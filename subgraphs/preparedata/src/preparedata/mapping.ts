/**
 * EVERY assumption about prepareData's HTTP API lives in this module.
 *
 * The real API is not public (reference/backends.md §2). What is known is the SRCNet Data
 * Management API's stage request: DIDs as `{namespace, name}`, `to_storage_area_uuid`, `lifetime`
 * in seconds, optional `parent_namespace`, a `job_id` back, and status by job id. Paths, the
 * status document, the state strings, the batched list, the idempotency header, lifetime
 * extension, release and the callback extension are our assumptions, written down once here so
 * that pointing the client at the real service means overriding this mapping and nothing else.
 * The emulator implements exactly the default mapping.
 */
import type {
  CallbackRegistration,
  Did,
  StageCallbackEvent,
  StageFile,
  StageJob,
  StageJobList,
  StageState,
} from './types.ts';
import { STAGE_STATES } from './types.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type OperationName =
  'submit' | 'getJob' | 'listJobs' | 'extendLifetime' | 'release' | 'registerCallback' | 'unregisterCallback';

/** A path relative to the client's base URL; `:jobId` is replaced by the (encoded) job id. */
export interface Route {
  method: HttpMethod;
  path: string;
}

/** A stage request after validation: what `encodeSubmit` turns into a wire body. */
export interface NormalisedStageRequest {
  dids: Did[];
  urls: string[];
  targetStorageArea: string;
  lifetimeSeconds: number;
  parentNamespace?: string;
  callback?: CallbackRegistration;
}

export interface PrepareDataApiMapping {
  routes: Record<OperationName, Route>;
  /** Header carrying the client-chosen key that makes a repeated submit return the first job. */
  idempotencyHeader: string;
  /** Query parameter of the list route, repeated once per job id. */
  listQueryParam: string;
  /** Ids per list request; bounded so that the URL stays well under common 8 KiB limits. */
  listBatchSize: number;
  /** Wire state strings to canonical states (the service may, say, say `REPLICATING`). */
  states: Readonly<Record<string, StageState>>;
  encodeSubmit(request: NormalisedStageRequest): unknown;
  decodeSubmit(body: unknown): string;
  decodeJob(body: unknown, mapping: PrepareDataApiMapping): StageJob;
  decodeJobList(body: unknown, mapping: PrepareDataApiMapping): StageJobList;
  encodeExtend(lifetimeSeconds: number): unknown;
  encodeCallbackRegistration(registration: CallbackRegistration): unknown;
  decodeCallback(body: unknown, mapping: PrepareDataApiMapping): StageCallbackEvent;
  /** The human-readable reason in an error response, if there is one. */
  errorDetail(body: unknown): string | undefined;
}

// ---- The default wire contract (snake_case, FastAPI-style `{detail}` errors like other SRCNet services).

export interface WireDid {
  namespace: string;
  name: string;
}

export interface WireSubmitRequest {
  to_storage_area_uuid: string;
  dids?: WireDid[];
  /** Extension: plain URLs besides DIDs. */
  urls?: string[];
  lifetime: number;
  parent_namespace?: string;
  /** Extension: per-job callback registration. */
  callback?: WireCallbackRegistration;
}

export interface WireSubmitResponse {
  job_id: string;
}

export interface WireFile {
  source: string;
  namespace: string | null;
  name: string | null;
  url: string | null;
  source_site: string | null;
  state: string;
  bytes_done: number;
  bytes_total: number;
  local_path: string | null;
  message: string | null;
  started_at: string | null;
  completed_at: string | null;
  in_flight_at_start: number | null;
}

export interface WireJob {
  job_id: string;
  state: string;
  message: string | null;
  to_storage_area_uuid: string;
  lifetime: number;
  bytes_done: number;
  bytes_total: number;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  expires_at: string;
  files: WireFile[];
}

export interface WireJobList {
  jobs: WireJob[];
  not_found: string[];
}

export interface WireExtendRequest {
  lifetime: number;
}

export interface WireCallbackRegistration {
  url: string;
  secret: string;
}

export interface WireCallbackEvent {
  event_id: string;
  job_id: string;
  sequence: number;
  type: 'state' | 'progress';
  state: string;
  bytes_done: number;
  bytes_total: number;
  time: string;
  message: string | null;
  expires_at: string;
}

export interface WireError {
  detail: string;
}

// ---- Decoding helpers: errors name the field and the rule it broke.

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError(`${where} must be a JSON object`);
  return value as Json;
}

function string(o: Json, key: string, where: string): string {
  const value = o[key];
  if (typeof value !== 'string' || value === '')
    throw new TypeError(`${where}.${key} must be a non-empty string`);
  return value;
}

function nullableString(o: Json, key: string, where: string): string | null {
  const value = o[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new TypeError(`${where}.${key} must be a string or null`);
  return value;
}

function count(o: Json, key: string, where: string): number {
  const value = o[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`${where}.${key} must be a non-negative integer`);
  return value;
}

function nullableCount(o: Json, key: string, where: string): number | null {
  return o[key] === undefined || o[key] === null ? null : count(o, key, where);
}

function array(o: Json, key: string, where: string): unknown[] {
  const value = o[key];
  if (!Array.isArray(value)) throw new TypeError(`${where}.${key} must be an array`);
  return value;
}

/** Maps a wire state through the mapping's vocabulary; an unknown one is an error, not a guess. */
export function decodeState(value: unknown, where: string, mapping: PrepareDataApiMapping): StageState {
  const state = typeof value === 'string' ? mapping.states[value] : undefined;
  if (!state)
    throw new TypeError(
      `${where} must be one of ${Object.keys(mapping.states).join(', ')} (got ${JSON.stringify(value)})`,
    );
  return state;
}

function decodeFile(value: unknown, where: string, mapping: PrepareDataApiMapping): StageFile {
  const o = object(value, where);
  const namespace = nullableString(o, 'namespace', where);
  const name = nullableString(o, 'name', where);
  return {
    source: string(o, 'source', where),
    did: namespace !== null && name !== null ? { namespace, name } : null,
    url: nullableString(o, 'url', where),
    sourceSite: nullableString(o, 'source_site', where),
    state: decodeState(o['state'], `${where}.state`, mapping),
    bytesDone: count(o, 'bytes_done', where),
    bytesTotal: count(o, 'bytes_total', where),
    localPath: nullableString(o, 'local_path', where),
    message: nullableString(o, 'message', where),
    startedAt: nullableString(o, 'started_at', where),
    completedAt: nullableString(o, 'completed_at', where),
    inFlightAtStart: nullableCount(o, 'in_flight_at_start', where),
  };
}

function decodeJobAt(value: unknown, where: string, mapping: PrepareDataApiMapping): StageJob {
  const o = object(value, where);
  return {
    jobId: string(o, 'job_id', where),
    state: decodeState(o['state'], `${where}.state`, mapping),
    message: nullableString(o, 'message', where),
    targetStorageArea: string(o, 'to_storage_area_uuid', where),
    lifetimeSeconds: count(o, 'lifetime', where),
    bytesDone: count(o, 'bytes_done', where),
    bytesTotal: count(o, 'bytes_total', where),
    createdAt: string(o, 'created_at', where),
    updatedAt: string(o, 'updated_at', where),
    startedAt: nullableString(o, 'started_at', where),
    completedAt: nullableString(o, 'completed_at', where),
    expiresAt: string(o, 'expires_at', where),
    files: array(o, 'files', where).map((file, i) => decodeFile(file, `${where}.files[${i}]`, mapping)),
  };
}

const identityStates = Object.fromEntries(STAGE_STATES.map((state) => [state, state])) as Record<
  string,
  StageState
>;

export const DEFAULT_PREPAREDATA_MAPPING: PrepareDataApiMapping = {
  routes: {
    submit: { method: 'POST', path: '/v1/data/stage' },
    listJobs: { method: 'GET', path: '/v1/data/stage' },
    getJob: { method: 'GET', path: '/v1/data/stage/:jobId' },
    extendLifetime: { method: 'PATCH', path: '/v1/data/stage/:jobId' },
    release: { method: 'DELETE', path: '/v1/data/stage/:jobId' },
    registerCallback: { method: 'PUT', path: '/v1/callbacks/stage' },
    unregisterCallback: { method: 'DELETE', path: '/v1/callbacks/stage' },
  },
  idempotencyHeader: 'idempotency-key',
  listQueryParam: 'job_id',
  listBatchSize: 100,
  states: identityStates,

  encodeSubmit(request) {
    const body: WireSubmitRequest = {
      to_storage_area_uuid: request.targetStorageArea,
      lifetime: request.lifetimeSeconds,
    };
    if (request.dids.length > 0) body.dids = request.dids.map(({ namespace, name }) => ({ namespace, name }));
    if (request.urls.length > 0) body.urls = [...request.urls];
    if (request.parentNamespace !== undefined) body.parent_namespace = request.parentNamespace;
    if (request.callback) body.callback = { url: request.callback.url, secret: request.callback.secret };
    return body;
  },
  decodeSubmit(body) {
    return string(object(body, 'submit response'), 'job_id', 'submit response');
  },
  decodeJob(body, mapping) {
    return decodeJobAt(body, 'job', mapping);
  },
  decodeJobList(body, mapping) {
    const o = object(body, 'job list');
    const missing = array(o, 'not_found', 'job list').map((id, i) => {
      if (typeof id !== 'string') throw new TypeError(`job list.not_found[${i}] must be a string`);
      return id;
    });
    const jobs = array(o, 'jobs', 'job list').map((job, i) =>
      decodeJobAt(job, `job list.jobs[${i}]`, mapping),
    );
    return { jobs, missing };
  },
  encodeExtend(lifetimeSeconds) {
    const body: WireExtendRequest = { lifetime: lifetimeSeconds };
    return body;
  },
  encodeCallbackRegistration({ url, secret }) {
    const body: WireCallbackRegistration = { url, secret };
    return body;
  },
  decodeCallback(body, mapping) {
    const where = 'callback';
    const o = object(body, where);
    const type = o['type'];
    if (type !== 'state' && type !== 'progress')
      throw new TypeError(`${where}.type must be "state" or "progress"`);
    const sequence = count(o, 'sequence', where);
    return {
      eventId: string(o, 'event_id', where),
      jobId: string(o, 'job_id', where),
      sequence,
      type,
      state: decodeState(o['state'], `${where}.state`, mapping),
      bytesDone: count(o, 'bytes_done', where),
      bytesTotal: count(o, 'bytes_total', where),
      time: string(o, 'time', where),
      message: nullableString(o, 'message', where),
      expiresAt: string(o, 'expires_at', where),
    };
  },
  errorDetail(body) {
    if (typeof body === 'string') return body || undefined;
    if (typeof body !== 'object' || body === null) return undefined;
    const detail = (body as Json)['detail'];
    // FastAPI validation errors carry a list of {loc, msg}; flatten them into one line.
    if (Array.isArray(detail))
      return detail
        .map((d) =>
          typeof d === 'object' && d !== null ? String((d as Json)['msg'] ?? JSON.stringify(d)) : String(d),
        )
        .join('; ');
    return typeof detail === 'string' ? detail : undefined;
  },
};

/**
 * The default mapping with some parts replaced. Routes and states merge key by key, so a service
 * that reports, say, `REPLICATING` needs only `{ states: { REPLICATING: 'STAGING' } }`.
 */
export type MappingOverrides = Partial<Omit<PrepareDataApiMapping, 'routes'>> & {
  routes?: Partial<Record<OperationName, Route>>;
};

export function defineMapping(overrides: MappingOverrides = {}): PrepareDataApiMapping {
  return {
    ...DEFAULT_PREPAREDATA_MAPPING,
    ...overrides,
    routes: { ...DEFAULT_PREPAREDATA_MAPPING.routes, ...overrides.routes },
    states: { ...DEFAULT_PREPAREDATA_MAPPING.states, ...overrides.states },
  };
}
