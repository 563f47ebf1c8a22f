import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { backoffMs, retryAfterMs, type RetryPolicy as SharedRetryPolicy } from '@srcnet/service-kit';
import type { OperationName, PrepareDataApiMapping } from './mapping.ts';
import { DEFAULT_PREPAREDATA_MAPPING } from './mapping.ts';
import { checkCallback, checkLifetime, normaliseStageRequest } from './request.ts';
import type {
  CallbackRegistration,
  PrepareDataApi,
  StageJob,
  StageJobList,
  StageRequest,
  SubmitOptions,
  SubmitResult,
} from './types.ts';

export interface RetryPolicy extends SharedRetryPolicy {
  /** A Retry-After longer than this is shortened to it, so a confused server cannot park us. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export interface PrepareDataClientOptions {
  /** Service root, e.g. `http://127.0.0.1:4103`; route paths from the mapping are appended. */
  baseUrl: string;
  /** Bearer token, or a function returning a fresh one per request (tokens expire). */
  token?: string | (() => string | Promise<string>);
  mapping?: PrepareDataApiMapping;
  /** Per attempt, body included; a timed-out attempt is retried. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  fetch?: typeof fetch;
  /** For deterministic tests of the backoff. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface PrepareDataErrorDetails {
  operation: OperationName;
  /** HTTP status, or null when no response arrived (timeout, connection refused). */
  status: number | null;
  /** True when the failure was transient and the retries ran out. */
  retryable: boolean;
  attempts: number;
  /** The service's own reason, when it gave one. */
  detail?: string;
}

export class PrepareDataError extends Error {
  override name = 'PrepareDataError';
  readonly operation: OperationName;
  readonly status: number | null;
  readonly retryable: boolean;
  readonly attempts: number;
  readonly detail: string | undefined;

  constructor(message: string, details: PrepareDataErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.operation = details.operation;
    this.status = details.status;
    this.retryable = details.retryable;
    this.attempts = details.attempts;
    this.detail = details.detail;
  }
}

interface CallSpec {
  jobId?: string;
  query?: [string, string][];
  body?: unknown;
  headers?: Record<string, string>;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** HTTP client for prepareData; every wire detail comes from the mapping. */
export class PrepareDataClient implements PrepareDataApi {
  private readonly baseUrl: string;
  private readonly mapping: PrepareDataApiMapping;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: PrepareDataClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.mapping = options.mapping ?? DEFAULT_PREPAREDATA_MAPPING;
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
  }

  async submit(request: StageRequest, options: SubmitOptions = {}): Promise<SubmitResult> {
    const normalised = normaliseStageRequest(request);
    // Chosen once, before the first attempt: every retry carries the same key.
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    const body = await this.call('submit', {
      body: this.mapping.encodeSubmit(normalised),
      headers: { [this.mapping.idempotencyHeader]: idempotencyKey },
    });
    return { jobId: this.decode('submit', () => this.mapping.decodeSubmit(body)), idempotencyKey };
  }

  async getJob(jobId: string): Promise<StageJob> {
    const body = await this.call('getJob', { jobId });
    return this.decode('getJob', () => this.mapping.decodeJob(body, this.mapping));
  }

  async listJobs(jobIds: readonly string[]): Promise<StageJobList> {
    const unique = [...new Set(jobIds)];
    const result: StageJobList = { jobs: [], missing: [] };
    for (let i = 0; i < unique.length; i += this.mapping.listBatchSize) {
      const batch = unique.slice(i, i + this.mapping.listBatchSize);
      const body = await this.call('listJobs', {
        query: batch.map((id) => [this.mapping.listQueryParam, id]),
      });
      const page = this.decode('listJobs', () => this.mapping.decodeJobList(body, this.mapping));
      result.jobs.push(...page.jobs);
      result.missing.push(...page.missing);
    }
    return result;
  }

  async extendLifetime(jobId: string, lifetimeSeconds: number): Promise<StageJob> {
    checkLifetime(lifetimeSeconds, 'lifetimeSeconds');
    const body = await this.call('extendLifetime', {
      jobId,
      body: this.mapping.encodeExtend(lifetimeSeconds),
    });
    return this.decode('extendLifetime', () => this.mapping.decodeJob(body, this.mapping));
  }

  async release(jobId: string): Promise<StageJob> {
    const body = await this.call('release', { jobId });
    return this.decode('release', () => this.mapping.decodeJob(body, this.mapping));
  }

  async registerCallback(registration: CallbackRegistration): Promise<void> {
    const checked = checkCallback(registration, 'registration');
    await this.call('registerCallback', { body: this.mapping.encodeCallbackRegistration(checked) });
  }

  async unregisterCallback(): Promise<void> {
    await this.call('unregisterCallback', {});
  }

  private decode<T>(operation: OperationName, decode: () => T): T {
    try {
      return decode();
    } catch (error) {
      throw new PrepareDataError(
        `prepareData ${operation} returned an unexpected body: ${(error as Error).message}`,
        { operation, status: null, retryable: false, attempts: 1 },
        { cause: error },
      );
    }
  }

  private url(operation: OperationName, spec: CallSpec): string {
    let path = this.mapping.routes[operation].path;
    if (path.includes(':jobId')) {
      if (!spec.jobId) throw new TypeError(`${operation} needs a job id`);
      path = path.replace(':jobId', encodeURIComponent(spec.jobId));
    }
    const query = spec.query?.length ? '?' + new URLSearchParams(spec.query).toString() : '';
    return this.baseUrl + path + query;
  }

  private async headers(spec: CallSpec): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (token) headers['authorization'] = `Bearer ${token}`;
    return headers;
  }

  /** One logical call: retries transient failures, returns the parsed JSON body of a 2xx. */
  private async call(operation: OperationName, spec: CallSpec): Promise<unknown> {
    const { method } = this.mapping.routes[operation];
    const url = this.url(operation, spec);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.retry.attempts;
      let response: Response;
      let text: string;
      try {
        response = await this.fetch(url, {
          method,
          headers: await this.headers(spec),
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        text = await response.text();
      } catch (error) {
        const timedOut = (error as Error).name === 'TimeoutError';
        const reason = timedOut ? `no response within ${this.timeoutMs} ms` : describeNetworkError(error);
        if (last)
          throw new PrepareDataError(
            `prepareData ${operation} failed after ${attempt} attempts: ${reason}`,
            { operation, status: null, retryable: true, attempts: attempt },
            { cause: error },
          );
        await this.sleep(backoffMs(attempt, this.retry, this.random));
        continue;
      }
      const body = parseBody(text);
      if (response.ok) return body;
      const detail = this.mapping.errorDetail(body);
      const retryable = RETRYABLE_STATUS.has(response.status);
      if (!retryable || last)
        throw new PrepareDataError(
          `prepareData ${operation} failed with HTTP ${response.status}` +
            (retryable ? ` after ${attempt} attempts` : '') +
            (detail ? `: ${detail}` : ''),
          { operation, status: response.status, retryable, attempts: attempt, ...(detail ? { detail } : {}) },
        );
      const retryAfter = retryAfterMs(response.headers.get('retry-after'));
      await this.sleep(
        retryAfter === undefined
          ? backoffMs(attempt, this.retry, this.random)
          : // A little jitter on top, so that clients told the same time do not return together.
            Math.min(retryAfter, this.retry.maxRetryAfterMs) +
              Math.round(this.random() * this.retry.baseDelayMs),
      );
    }
  }
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
