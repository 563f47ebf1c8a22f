/**
 * One HTTP exchange with timeouts and, for idempotent requests only, retries with exponential
 * backoff and full jitter. Shared by the Harbor API client and the OCI registry client, which
 * usually talk to the same Harbor host and should behave the same under load.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, retryAfterMs, type RetryPolicy } from '@srcnet/service-kit';

/**
 * The shared retry policy (maxDelayMs also bounds an honoured Retry-After), with what one exchange
 * adds. Unset fields take DEFAULT_RETRY_OPTIONS.
 */
export interface RetryOptions extends Partial<RetryPolicy> {
  /** Per-attempt limit for the whole exchange, reading the body included. */
  timeoutMs?: number;
  /** Source of jitter; injectable so that tests can pin it. */
  random?: () => number;
}

export const DEFAULT_RETRY_OPTIONS: Required<RetryOptions> = {
  attempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  timeoutMs: 15_000,
  random: Math.random,
};

/** No response at all: the server did not answer in time, or the connection failed. */
export class TransportError extends Error {
  constructor(
    readonly kind: 'timeout' | 'network',
    readonly method: string,
    readonly url: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(
      `${method} ${url}: ${kind === 'timeout' ? 'no answer in time' : 'connection failed'} after ${attempts} attempt(s)`,
      options,
    );
    this.name = 'TransportError';
  }
}

export interface Exchange {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /**
   * Whether repeating the request is harmless. Creates (POST) are not: a lost answer to "start
   * a replication" would otherwise start two.
   */
  idempotent: boolean;
  signal?: AbortSignal;
}

const RETRIED_STATUSES = new Set([429, 500, 502, 503, 504]);

/**
 * Sends the request, retrying transient failures of idempotent requests. Returns the last
 * response whatever its status (the caller turns error statuses into its own error type);
 * throws TransportError only when no response was had.
 */
export async function send(
  exchange: Exchange,
  options: RetryOptions = {},
  fetchImpl: typeof fetch = fetch,
): Promise<Response> {
  const policy = { ...DEFAULT_RETRY_OPTIONS, ...options };
  const attempts = exchange.idempotent ? policy.attempts : 1;
  for (let attempt = 1; ; attempt++) {
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    const signal = exchange.signal ? AbortSignal.any([exchange.signal, timeout]) : timeout;
    let response: Response | undefined;
    let failure: TransportError | undefined;
    try {
      response = await fetchImpl(exchange.url, {
        method: exchange.method,
        headers: exchange.headers,
        // Any Uint8Array is a valid body at run time; the DOM typings insist on an ArrayBuffer.
        body: exchange.body as BodyInit | undefined,
        signal,
        redirect: 'follow',
      });
    } catch (error) {
      // The caller's own abort is not a transient fault: stop at once.
      if (exchange.signal?.aborted) throw error;
      failure = new TransportError(
        timeout.aborted ? 'timeout' : 'network',
        exchange.method,
        exchange.url,
        attempt,
        { cause: error },
      );
    }
    const transient = failure !== undefined || RETRIED_STATUSES.has(response!.status);
    if (!transient || attempt >= attempts) {
      if (failure) throw failure;
      return response!;
    }
    const hinted = response ? retryAfterMs(response.headers.get('retry-after')) : undefined;
    // A server that says when to come back knows better than our guess, within reason.
    const delay =
      hinted !== undefined ? Math.min(hinted, policy.maxDelayMs) : backoffMs(attempt, policy, policy.random);
    await response?.body?.cancel().catch(() => undefined);
    await sleep(delay, undefined, exchange.signal ? { signal: exchange.signal } : undefined);
  }
}
