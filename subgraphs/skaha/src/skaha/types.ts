/**
 * The Skaha sessions API (`/skaha/v1`) as it is on the wire, plus the normalised views this
 * client hands out. Field names and string-typed numbers follow Skaha's Gson serialisation
 * (null fields omitted); see /work/shared/reference/backends.md §1.5.
 */

/** Types accepted by `POST /session`; `desktop-app` exists only as apps attached to a desktop. */
export const SESSION_TYPES = ['desktop', 'notebook', 'carta', 'contributed', 'firefly', 'headless'] as const;
export type SessionType = (typeof SESSION_TYPES)[number];

/** The statuses this client normalises to; `Unknown` stands for any string it does not know. */
export const SESSION_STATUSES = ['Pending', 'Running', 'Completed', 'Failed', 'Terminating'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number] | 'Unknown';

/** A session exactly as Skaha serialises it. */
export interface SessionJson {
  id: string;
  userid: string;
  runAsUID?: string;
  runAsGID?: string;
  supplementalGroups?: number[];
  /** Only on desktop-app entries. */
  appid?: string;
  image: string;
  type: string;
  status: string;
  name: string;
  /** Absent while the job has not started. */
  startTime?: string;
  expiryTime?: string;
  /** Empty for headless sessions and desktop apps. */
  connectURL?: string;
  /** Decimal GB without unit (older servers: "16G"); only for fixed-resource sessions. */
  requestedRAM?: string;
  /** Only for fixed-resource sessions. */
  requestedCPUCores?: string;
  /** "0" when none (older servers: "<none>"). */
  requestedGPUCores?: string;
  ramInUse?: string;
  cpuCoresInUse?: string;
  gpuRAMInUse?: string;
  gpuUtilization?: string;
  isFixedResources?: boolean;
}

/** A session as the client returns it: the wire fields with the status normalised. */
export interface Session extends Omit<SessionJson, 'status'> {
  status: SessionStatus;
  /** Skaha's own status string, e.g. `Succeeded` or `Failed (DeadlineExceeded)`. */
  rawStatus: string;
}

/** `GET /session?view=all`: every user's sessions, reduced to what anyone may see. */
export interface PublicSessionJson {
  userid: string;
  type: string;
  status: string;
  startTime?: string;
}

export interface PublicSession extends Omit<PublicSessionJson, 'status'> {
  status: SessionStatus;
  rawStatus: string;
}

/** `GET /session?view=stats`; memory values are strings with a unit suffix ("1200G"). */
export interface ResourceStats {
  cores: {
    requestedCPUCores: number;
    cpuCoresAvailable: number;
    maxCPUCores: { cpuCores: number; withRam: string };
  };
  ram: {
    requestedRAM: string;
    ramAvailable: string;
    maxRAM: { ram: string; withCPUCores: number };
  };
}

export interface ResourceOptions {
  default: number;
  defaultRequest: number;
  defaultLimit: number;
  options: number[];
}

/** `GET /context`: the values `cores`, `ram` and `gpus` of a create must come from. */
export interface ResourceContext {
  cores: ResourceOptions;
  memoryGB: ResourceOptions;
  gpus: { options: number[] };
  maxInteractiveSessions?: number;
}

/** `GET /image`: images in Skaha's public cache; anything else needs registry credentials. */
export interface ImageJson {
  id: string;
  types: string[];
  digest?: string;
}

export interface SessionFilter {
  type?: string;
  /** Skaha matches it case-insensitively. */
  status?: string;
  /** Only the non-headless sessions (`view=interactive`). */
  interactiveOnly?: boolean;
}

export interface CreateSessionRequest {
  /** `[A-Za-z0-9-]+`; Skaha stores and returns it lower-cased. Unique names make create retries safe. */
  name: string;
  /** Must start with one of the hosts of `GET /repository`. */
  image: string;
  /** Skaha's default is `headless`. */
  type?: SessionType;
  /** Cores and RAM (GB) make the session fixed-resource; without them it is flexible. */
  cores?: number;
  ram?: number;
  gpus?: number;
  /** Headless only: replaces the image entrypoint. */
  cmd?: string;
  /** Headless only: Skaha splits the args on single spaces, so no element may contain one. */
  args?: string[];
  /** Headless only: values must not contain `=`, which Skaha would silently drop. */
  env?: Record<string, string>;
  /** Needed when the image is not in `GET /image`; sent as `x-skaha-registry-auth`. */
  registryAuth?: { username: string; secret: string };
  /** Callback extension: register a callback for this session as part of the create. */
  callback?: CallbackTarget;
}

export interface CreatedSession {
  id: string;
  /** Every id in the answer; Skaha sends one, but the body is a list of lines. */
  ids: string[];
  /** The name as Skaha stores it (lower-cased). */
  name: string;
  /** True when a lost answer was recovered by finding the session by name instead of re-creating it. */
  recovered: boolean;
}

/** Where and how the callback extension sends notifications. */
export interface CallbackTarget {
  url: string;
  /** Shared HMAC secret, at least 16 characters; never returned by the service. */
  secret: string;
}

export interface CallbackRegistrationRequest extends CallbackTarget {
  /** One session; absent for all of the caller's sessions, present and future. */
  session?: string;
}

/** A registration as the extension returns it (no secret). */
export interface CallbackRegistration {
  id: string;
  url: string;
  session?: string;
  created: string;
}

/** The body of every callback the extension sends (see docs/skaha-callbacks.md). */
export interface SessionCallbackJson {
  eventId: string;
  /** `session.deleted` is the last event of a session: it no longer exists. */
  type: 'session.status' | 'session.deleted';
  /** Changes when the service restarts: a receiver should then reconcile with one list call. */
  instance: string;
  sessionId: string;
  name: string;
  userid: string;
  status: string;
  previousStatus: string | null;
  time: string;
  /** Increases by one per event of the session; a receiver drops anything at or below what it has. */
  sequence: number;
  message?: string;
  /** The session as `GET /session/{id}` would return it; absent on `session.deleted`. */
  session?: SessionJson;
}

export interface SessionCallback extends Omit<SessionCallbackJson, 'status' | 'session'> {
  status: SessionStatus;
  rawStatus: string;
  session?: Session;
}
