/**
 * Why a call failed:
 * - `status`: Skaha answered with an error status; `message` is its text/plain body.
 * - `timeout`: no complete answer within the per-request timeout.
 * - `network`: the connection failed.
 * - `response`: a 2xx answer this client cannot read.
 * - `ambiguous`: a create may have happened, and looking it up failed, so the client stopped
 *   rather than risk a second session.
 */
export type SkahaErrorReason = 'status' | 'timeout' | 'network' | 'response' | 'ambiguous';

export interface SkahaErrorDetails {
  method: string;
  path: string;
  /** The HTTP status; 0 when there was no answer. */
  status?: number;
  /** From a 429 or 503 Retry-After header. */
  retryAfterMs?: number;
  /** False only when the request certainly never reached the server (connection refused). */
  mayHaveReachedServer?: boolean;
  cause?: unknown;
}

export class SkahaError extends Error {
  override readonly name = 'SkahaError';
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly retryAfterMs: number | undefined;
  readonly mayHaveReachedServer: boolean;

  constructor(
    readonly reason: SkahaErrorReason,
    message: string,
    details: SkahaErrorDetails,
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status ?? 0;
    this.method = details.method;
    this.path = details.path;
    this.retryAfterMs = details.retryAfterMs;
    this.mayHaveReachedServer = details.mayHaveReachedServer ?? true;
  }

  /** Worth another attempt: overload, server trouble or a lost answer. */
  get retryable(): boolean {
    if (this.reason === 'timeout' || this.reason === 'network') return true;
    return this.reason === 'status' && (this.status === 429 || this.status >= 500);
  }

  /** The server may have done the work although the caller has no answer saying so. */
  get outcomeUnknown(): boolean {
    if (this.reason === 'timeout') return true;
    if (this.reason === 'network') return this.mayHaveReachedServer;
    return this.reason === 'status' && this.status >= 500;
  }
}
