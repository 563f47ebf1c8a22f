/**
 * The prepareData vocabulary as the rest of the project sees it: camelCase, canonical states,
 * ISO-8601 times. How these map onto the wire is the business of `mapping.ts` alone.
 */

/**
 * QUEUED: accepted, nothing moving yet. STAGING: at least one file is moving or done.
 * COMPLETED: every file is in the target area. FAILED: a file could not be staged (see message).
 * RELEASED: the client released it. EXPIRED: its lifetime ended. The last four are final,
 * except that COMPLETED becomes RELEASED or EXPIRED.
 */
export const STAGE_STATES = ['QUEUED', 'STAGING', 'COMPLETED', 'FAILED', 'RELEASED', 'EXPIRED'] as const;
export type StageState = (typeof STAGE_STATES)[number];

/** States after which nothing will change again. */
export const FINAL_STAGE_STATES: ReadonlySet<StageState> = new Set(['FAILED', 'RELEASED', 'EXPIRED']);

/** A Rucio data identifier: namespace is the Rucio scope. */
export interface Did {
  namespace: string;
  name: string;
}

export interface CallbackRegistration {
  /** Where the service POSTs notifications. */
  url: string;
  /** Shared secret for the HMAC-SHA256 signature (see @srcnet/service-kit). */
  secret: string;
}

export interface StageRequest {
  /** Rucio DIDs, as `{ namespace, name }` or `"namespace:name"`. */
  dids?: readonly (Did | string)[];
  /** Plain URLs (IVOA access_url, S3 object URL, simple location). */
  urls?: readonly string[];
  /** The storage area the data goes into (the DM API's `to_storage_area_uuid`). */
  targetStorageArea: string;
  /** Whole seconds from submission after which the service removes the data. */
  lifetimeSeconds: number;
  /** Rucio only; the DM API defaults it to the first DID's namespace. */
  parentNamespace?: string;
  /** Per-job callback registration (the proposed extension). */
  callback?: CallbackRegistration;
}

export interface SubmitOptions {
  /**
   * Makes the submit safe to repeat: the service returns the first job for a key it has seen.
   * Pass a key derived from the caller's own identity (e.g. step id + resource name) so that even
   * a worker restart cannot create a second job; otherwise one is chosen per call.
   */
  idempotencyKey?: string;
}

export interface SubmitResult {
  jobId: string;
  /** The key the submit carried, so a caller that did not choose one can record it. */
  idempotencyKey: string;
}

export interface StageFile {
  /** `namespace:name` for a DID, the URL otherwise. */
  source: string;
  did: Did | null;
  url: string | null;
  /** RSE name for a DID, host for a URL; null until the service has chosen a replica. */
  sourceSite: string | null;
  state: StageState;
  bytesDone: number;
  bytesTotal: number;
  /** Where the file is while staged; null before completion and after removal. */
  localPath: string | null;
  message: string | null;
  startedAt: string | null;
  completedAt: string | null;
  /** Transfers running at the source site when this one started (estimation input). */
  inFlightAtStart: number | null;
}

export interface StageJob {
  jobId: string;
  state: StageState;
  message: string | null;
  targetStorageArea: string;
  lifetimeSeconds: number;
  bytesDone: number;
  bytesTotal: number;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  expiresAt: string;
  files: StageFile[];
}

export interface StageJobList {
  jobs: StageJob[];
  /** Requested ids the service does not know (or that belong to someone else). */
  missing: string[];
}

/** One notification of the proposed callback extension. */
export interface StageCallbackEvent {
  /** Unique per event; a repeated delivery carries the same id. */
  eventId: string;
  jobId: string;
  /** Rises by one per event of a job; gaps mean superseded progress events. */
  sequence: number;
  type: 'state' | 'progress';
  state: StageState;
  bytesDone: number;
  bytesTotal: number;
  time: string;
  message: string | null;
  expiresAt: string;
}

/** What a worker needs from prepareData; the HTTP client implements it, tests may fake it. */
export interface PrepareDataApi {
  submit(request: StageRequest, options?: SubmitOptions): Promise<SubmitResult>;
  getJob(jobId: string): Promise<StageJob>;
  /** Status of many jobs with as few requests as the service allows (one per batch). */
  listJobs(jobIds: readonly string[]): Promise<StageJobList>;
  /** Sets the remaining lifetime to `lifetimeSeconds` from now. */
  extendLifetime(jobId: string, lifetimeSeconds: number): Promise<StageJob>;
  /** Ends the job early; the service removes its files. Releasing twice is harmless. */
  release(jobId: string): Promise<StageJob>;
  /** Registers one callback for all of this client's jobs (replacing any earlier one). */
  registerCallback(registration: CallbackRegistration): Promise<void>;
  unregisterCallback(): Promise<void>;
}
