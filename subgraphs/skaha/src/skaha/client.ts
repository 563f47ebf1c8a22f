import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, retryAfterMs, type RetryPolicy as SharedRetryPolicy } from '@srcnet/service-kit';
import { SkahaError } from './errors.ts';
import { normaliseStatus } from './status.ts';
import type {
  CallbackRegistration,
  CallbackRegistrationRequest,
  CreatedSession,
  CreateSessionRequest,
  ImageJson,
  PublicSession,
  PublicSessionJson,
  ResourceContext,
  ResourceStats,
  Session,
  SessionFilter,
  SessionJson,
} from './types.ts';

/** Per-call settings. */
export interface RequestOptions {
  /** Per attempt; defaults to the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Aborts the call, retries included. */
  signal?: AbortSignal;
}

/** What the worker needs from Skaha; `SkahaClient` implements it over HTTP. */
export interface SkahaApi {
  /** `POST /session`. Retried without ever creating twice: see `SkahaClient`. */
  createSession(request: CreateSessionRequest, options?: RequestOptions): Promise<CreatedSession>;
  /** `GET /session`: the caller's sessions, headless included. */
  listSessions(filter?: SessionFilter, options?: RequestOptions): Promise<Session[]>;
  /** `GET /session?view=all`: everyone's sessions, public fields only. */
  listPublicSessions(options?: RequestOptions): Promise<PublicSession[]>;
  /** `GET /session?view=stats`: cluster-wide requested and available resources. */
  getStats(options?: RequestOptions): Promise<ResourceStats>;
  /** `GET /session/{id}`; a SkahaError with status 404 when it is not the caller's or is gone. */
  getSession(id: string, options?: RequestOptions): Promise<Session>;
  /** `GET /session/{id}?view=logs`: the container logs as text. */
  getSessionLogs(id: string, options?: RequestOptions): Promise<string>;
  /** `GET /session/{id}?view=events`: the Kubernetes events table as text (see `parseEventsTable`). */
  getSessionEvents(id: string, options?: RequestOptions): Promise<string>;
  /** `POST /session/{id}?action=renew`: the deadline becomes now + the configured lifetime. */
  renewSession(id: string, options?: RequestOptions): Promise<void>;
  /** `DELETE /session/{id}`: Skaha answers 200 even for unknown ids. */
  deleteSession(id: string, options?: RequestOptions): Promise<void>;
  getContext(options?: RequestOptions): Promise<ResourceContext>;
  /** `GET /image`, optionally only the images usable for one session type. */
  listImages(type?: string, options?: RequestOptions): Promise<ImageJson[]>;
  /** `GET /repository`: the registry hosts images must come from. */
  listRepositories(options?: RequestOptions): Promise<string[]>;
  /** Callback extension: whether this deployment has it (`GET /callbacks` is not a 404). */
  supportsCallbacks(options?: RequestOptions): Promise<boolean>;
  /** Callback extension: returns the registration id; registering is idempotent, so retries are safe. */
  registerCallback(request: CallbackRegistrationRequest, options?: RequestOptions): Promise<string>;
  listCallbacks(options?: RequestOptions): Promise<CallbackRegistration[]>;
  /** A SkahaError with status 404 when the service no longer has it (e.g. after a restart). */
  getCallback(id: string, options?: RequestOptions): Promise<CallbackRegistration>;
  unregisterCallback(id: string, options?: RequestOptions): Promise<void>;
}

export interface RetryPolicy extends SharedRetryPolicy {
  /** A longer Retry-After is not waited for: the error goes to the caller to reschedule. */
  maxRetryAfterMs: number;
}

/**
 * About 15 to 30 s of retries before a step fails: a Skaha restarting or briefly overloaded should
 * delay sessions, not fail them (e2e/faults fails a tenth of Skaha's requests; with 4 attempts a
 * few of 300 steps failed on a run of 503s).
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 8,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export interface SkahaClientOptions {
  /** The API base, e.g. `https://ws-uv.canfar.net/skaha/v1`. */
  baseUrl: string;
  /** A bearer token, or a function asked before every attempt so that refreshed tokens are used. */
  token: string | (() => string | Promise<string>);
  /** Per attempt; default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** For backoff jitter; `Math.random` by default. */
  random?: () => number;
}

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: URLSearchParams;
  form?: URLSearchParams;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  text: string;
}

/** Connection errors that prove the request never reached the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const NAME_PATTERN = /^[A-Za-z0-9-]+$/;

/**
 * HTTP client for Skaha. Every call is retried with exponential backoff and jitter on 5xx, 429
 * (waiting at least Retry-After), timeouts and connection failures. A create whose outcome is
 * unknown (timeout, 5xx, connection lost) is never simply repeated: the client first looks for
 * a session of that name and image among the caller's sessions, and only creates again if there
 * is none. Names should therefore be unique per create (the worker derives them from the step).
 */
export class SkahaClient implements SkahaApi {
  private readonly baseUrl: string;
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly random: () => number;

  constructor(private readonly options: SkahaClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.random = options.random ?? Math.random;
    if (!(this.policy.attempts >= 1)) throw new RangeError('retry.attempts must be at least 1');
  }

  async createSession(request: CreateSessionRequest, options: RequestOptions = {}): Promise<CreatedSession> {
    const form = createForm(request);
    const headers: Record<string, string> = {};
    if (request.registryAuth) {
      const { username, secret } = request.registryAuth;
      if (username.includes(':'))
        throw new TypeError('registryAuth.username must not contain ":" (Skaha splits the pair on it)');
      headers['x-skaha-registry-auth'] = Buffer.from(`${username}:${secret}`).toString('base64');
    }
    const name = request.name.toLowerCase().slice(0, 63);
    return this.retrying<CreatedSession>(
      { method: 'POST', path: '/session', form, headers },
      options,
      (answer) => {
        const ids = answer.text.split(/\s+/).filter(Boolean);
        if (!ids[0]) throw this.unreadable('POST', '/session', 'the answer has no session id');
        return { id: ids[0], ids, name, recovered: false };
      },
      async () => {
        const found = await this.findCreated(name, request, options);
        return found && { id: found.id, ids: [found.id], name, recovered: true };
      },
    );
  }

  async listSessions(filter: SessionFilter = {}, options: RequestOptions = {}): Promise<Session[]> {
    const query = new URLSearchParams();
    if (filter.type) query.set('type', filter.type);
    if (filter.status) query.set('status', filter.status);
    if (filter.interactiveOnly) query.set('view', 'interactive');
    const path = '/session';
    return this.retrying({ method: 'GET', path, query }, options, (answer) =>
      this.jsonArray(answer, 'GET', path).map((item) => this.session(item, 'GET', path)),
    );
  }

  async listPublicSessions(options: RequestOptions = {}): Promise<PublicSession[]> {
    const path = '/session';
    const query = new URLSearchParams({ view: 'all' });
    return this.retrying({ method: 'GET', path, query }, options, (answer) =>
      this.jsonArray(answer, 'GET', path).map((item) => {
        const value = item as PublicSessionJson;
        if (typeof value?.status !== 'string' || typeof value.userid !== 'string')
          throw this.unreadable('GET', path, 'a public session lacks userid or status');
        return { ...value, status: normaliseStatus(value.status), rawStatus: value.status };
      }),
    );
  }

  async getStats(options: RequestOptions = {}): Promise<ResourceStats> {
    const query = new URLSearchParams({ view: 'stats' });
    return this.retrying({ method: 'GET', path: '/session', query }, options, (answer) => {
      const value = this.json(answer, 'GET', '/session') as ResourceStats;
      if (typeof value?.cores !== 'object' || typeof value.ram !== 'object')
        throw this.unreadable('GET', '/session', 'stats lack cores or ram');
      return value;
    });
  }

  async getSession(id: string, options: RequestOptions = {}): Promise<Session> {
    const path = `/session/${encodeURIComponent(id)}`;
    return this.retrying({ method: 'GET', path }, options, (answer) =>
      this.session(this.json(answer, 'GET', path), 'GET', path),
    );
  }

  async getSessionLogs(id: string, options: RequestOptions = {}): Promise<string> {
    const query = new URLSearchParams({ view: 'logs' });
    const call: Call = { method: 'GET', path: `/session/${encodeURIComponent(id)}`, query };
    return this.retrying(call, options, (answer) => answer.text);
  }

  async getSessionEvents(id: string, options: RequestOptions = {}): Promise<string> {
    const query = new URLSearchParams({ view: 'events' });
    const call: Call = { method: 'GET', path: `/session/${encodeURIComponent(id)}`, query };
    return this.retrying(call, options, (answer) => answer.text);
  }

  // Renew sets the deadline to now + lifetime, so repeating it is harmless.
  async renewSession(id: string, options: RequestOptions = {}): Promise<void> {
    const form = new URLSearchParams({ action: 'renew' });
    await this.retrying(
      { method: 'POST', path: `/session/${encodeURIComponent(id)}`, form },
      options,
      () => {},
    );
  }

  async deleteSession(id: string, options: RequestOptions = {}): Promise<void> {
    await this.retrying({ method: 'DELETE', path: `/session/${encodeURIComponent(id)}` }, options, () => {});
  }

  async getContext(options: RequestOptions = {}): Promise<ResourceContext> {
    return this.retrying({ method: 'GET', path: '/context' }, options, (answer) => {
      const value = this.json(answer, 'GET', '/context') as ResourceContext;
      if (!Array.isArray(value?.cores?.options) || !Array.isArray(value.memoryGB?.options))
        throw this.unreadable('GET', '/context', 'the context lacks cores.options or memoryGB.options');
      return value;
    });
  }

  async listImages(type?: string, options: RequestOptions = {}): Promise<ImageJson[]> {
    const query = new URLSearchParams(type ? { type } : {});
    return this.retrying({ method: 'GET', path: '/image', query }, options, (answer) =>
      this.jsonArray(answer, 'GET', '/image').map((item) => {
        const image = item as ImageJson;
        if (typeof image?.id !== 'string' || !Array.isArray(image.types))
          throw this.unreadable('GET', '/image', 'an image lacks id or types');
        return image;
      }),
    );
  }

  async listRepositories(options: RequestOptions = {}): Promise<string[]> {
    return this.retrying({ method: 'GET', path: '/repository' }, options, (answer) => {
      const hosts = this.jsonArray(answer, 'GET', '/repository');
      if (!hosts.every((host) => typeof host === 'string'))
        throw this.unreadable('GET', '/repository', 'repositories must be strings');
      return hosts as string[];
    });
  }

  async supportsCallbacks(options: RequestOptions = {}): Promise<boolean> {
    try {
      await this.listCallbacks(options);
      return true;
    } catch (error) {
      if (error instanceof SkahaError && error.reason === 'status' && error.status === 404) return false;
      throw error;
    }
  }

  async registerCallback(
    request: CallbackRegistrationRequest,
    options: RequestOptions = {},
  ): Promise<string> {
    const form = new URLSearchParams({ url: request.url, secret: request.secret });
    if (request.session) form.set('session', request.session);
    return this.retrying({ method: 'POST', path: '/callbacks', form }, options, (answer) => {
      const id = answer.text.trim();
      if (!id) throw this.unreadable('POST', '/callbacks', 'the answer has no registration id');
      return id;
    });
  }

  async listCallbacks(options: RequestOptions = {}): Promise<CallbackRegistration[]> {
    return this.retrying({ method: 'GET', path: '/callbacks' }, options, (answer) =>
      this.jsonArray(answer, 'GET', '/callbacks').map((item) => this.registration(item, '/callbacks')),
    );
  }

  async getCallback(id: string, options: RequestOptions = {}): Promise<CallbackRegistration> {
    const path = `/callbacks/${encodeURIComponent(id)}`;
    return this.retrying({ method: 'GET', path }, options, (answer) =>
      this.registration(this.json(answer, 'GET', path), path),
    );
  }

  async unregisterCallback(id: string, options: RequestOptions = {}): Promise<void> {
    await this.retrying(
      { method: 'DELETE', path: `/callbacks/${encodeURIComponent(id)}` },
      options,
      () => {},
    );
  }

  /**
   * Runs a call with retries. `recover`, for calls that must not be repeated blindly, is asked
   * after every failure that may have done the work; a value it returns is the call's result.
   */
  private async retrying<T>(
    call: Call,
    options: RequestOptions,
    read: (answer: Answer) => T,
    recover?: () => Promise<T | undefined>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let failure: SkahaError;
      try {
        return read(await this.once(call, options));
      } catch (error) {
        if (!(error instanceof SkahaError) || !error.retryable) throw error;
        failure = error;
      }
      const giveUp =
        attempt >= this.policy.attempts || (failure.retryAfterMs ?? 0) > this.policy.maxRetryAfterMs;
      const lookUp = recover !== undefined && failure.outcomeUnknown;
      // Waiting before a look-up too gives a slow server time to finish what it may be doing.
      if (!giveUp || lookUp) await this.pause(attempt, failure, options.signal);
      if (lookUp) {
        let found: T | undefined;
        try {
          found = await recover();
        } catch (lookup) {
          throw new SkahaError(
            'ambiguous',
            `${call.method} ${call.path} may have succeeded (${failure.message}), and looking for its result failed: ${
              lookup instanceof Error ? lookup.message : String(lookup)
            }; not repeating it`,
            { method: call.method, path: call.path, status: failure.status, cause: lookup },
          );
        }
        if (found !== undefined) return found;
      }
      if (giveUp) throw failure;
    }
  }

  private async pause(attempt: number, failure: SkahaError, signal: AbortSignal | undefined): Promise<void> {
    const backoff = backoffMs(attempt, this.policy, this.random);
    const wait = Math.max(backoff, Math.min(failure.retryAfterMs ?? 0, this.policy.maxRetryAfterMs));
    await sleep(wait, undefined, signal ? { signal } : {});
  }

  private async once(call: Call, options: RequestOptions): Promise<Answer> {
    const url = new URL(this.baseUrl + call.path);
    if (call.query) url.search = call.query.toString();
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...call.headers };
    if (call.form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const where = { method: call.method, path: call.path };
    let status: number;
    let text: string;
    let retryAfterHeader: string | null;
    try {
      const response = await fetch(url, {
        method: call.method,
        headers,
        ...(call.form ? { body: call.form.toString() } : {}),
        signal,
      });
      status = response.status;
      retryAfterHeader = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted)
        throw new SkahaError('timeout', `${call.method} ${call.path} got no answer within the timeout`, {
          ...where,
          cause: error,
        });
      const code = (error as { cause?: { code?: string } }).cause?.code;
      throw new SkahaError('network', `${call.method} ${call.path} failed: ${code ?? String(error)}`, {
        ...where,
        mayHaveReachedServer: !(code && NOT_SENT_CODES.has(code)),
        cause: error,
      });
    }
    if (status >= 200 && status < 300) return { status, text };
    const retryAfter = retryAfterMs(retryAfterHeader);
    throw new SkahaError('status', `Skaha ${call.method} ${call.path} answered ${status}: ${text.trim()}`, {
      ...where,
      status,
      ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
    });
  }

  private async findCreated(
    name: string,
    request: CreateSessionRequest,
    options: RequestOptions,
  ): Promise<Session | undefined> {
    const sessions = await this.listSessions({ type: request.type ?? 'headless' }, options);
    const matches = sessions.filter(
      (s) => s.name === name && s.image === request.image && s.status !== 'Terminating',
    );
    // A just-created session has not started yet; otherwise prefer the latest start.
    return matches.sort((a, b) => (b.startTime ?? '9999').localeCompare(a.startTime ?? '9999'))[0];
  }

  private json(answer: Answer, method: string, path: string): unknown {
    try {
      return JSON.parse(answer.text);
    } catch {
      throw this.unreadable(method, path, 'the answer is not JSON');
    }
  }

  private jsonArray(answer: Answer, method: string, path: string): unknown[] {
    const value = this.json(answer, method, path);
    if (!Array.isArray(value)) throw this.unreadable(method, path, 'expected a JSON array');
    return value;
  }

  private session(value: unknown, method: string, path: string): Session {
    const json = value as SessionJson;
    if (typeof json?.id !== 'string' || typeof json.status !== 'string' || typeof json.name !== 'string')
      throw this.unreadable(method, path, 'a session lacks id, name or status');
    return { ...json, status: normaliseStatus(json.status), rawStatus: json.status };
  }

  private registration(value: unknown, path: string): CallbackRegistration {
    const json = value as CallbackRegistration;
    if (typeof json?.id !== 'string' || typeof json.url !== 'string')
      throw this.unreadable('GET', path, 'a callback registration lacks id or url');
    return json;
  }

  private unreadable(method: string, path: string, why: string): SkahaError {
    return new SkahaError('response', `Skaha ${method} ${path}: ${why}`, { method, path });
  }
}

/**
 * The form of a create. Rejects what Skaha would silently mangle: env values with `=` (dropped),
 * args with spaces (split), and cmd/args/env on interactive sessions (ignored).
 */
function createForm(request: CreateSessionRequest): URLSearchParams {
  if (!NAME_PATTERN.test(request.name))
    throw new TypeError(`name must match ${NAME_PATTERN.source} (got ${JSON.stringify(request.name)})`);
  const form = new URLSearchParams({ name: request.name, image: request.image });
  if (request.type) form.set('type', request.type);
  for (const key of ['cores', 'ram', 'gpus'] as const) {
    const value = request[key];
    if (value === undefined) continue;
    if (!(Number.isFinite(value) && value > 0))
      throw new TypeError(`${key} must be a positive number (got ${value})`);
    form.set(key, String(value));
  }
  const headless = (request.type ?? 'headless') === 'headless';
  const hasCommand = request.cmd !== undefined || request.args !== undefined || request.env !== undefined;
  if (hasCommand && !headless)
    throw new TypeError(`cmd, args and env apply only to headless sessions (type is ${request.type})`);
  if (request.cmd !== undefined) {
    if (!/^\S+$/.test(request.cmd))
      throw new TypeError(
        'cmd must be one word: Skaha uses it as the whole entrypoint; put the rest in args',
      );
    form.set('cmd', request.cmd);
  }
  if (request.args !== undefined) {
    const bad = request.args.find((arg) => arg === '' || arg.includes(' '));
    if (bad !== undefined)
      throw new TypeError(
        `args must be non-empty and without spaces, as Skaha splits on spaces (got ${JSON.stringify(bad)})`,
      );
    form.set('args', request.args.join(' '));
  }
  for (const [key, value] of Object.entries(request.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      throw new TypeError(`env key ${JSON.stringify(key)} is not a variable name`);
    if (value === '' || value.includes('='))
      throw new TypeError(`env ${key}: the value must be non-empty and without "=", or Skaha drops it`);
    form.append('env', `${key}=${value}`);
  }
  if (request.callback) {
    form.set('callbackURL', request.callback.url);
    form.set('callbackSecret', request.callback.secret);
  }
  return form;
}
