/**
 * Retrying transient failures, the same way everywhere: the backend clients (Skaha, prepareData,
 * Harbor and its registry) and the broker's job engine take one policy shape and wait by one rule.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first wait's ceiling; it doubles with each attempt, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * The wait after attempt `attempt` (1-based): exponential, capped, with "equal jitter" (50–100 %
 * of the ceiling), which spreads clients that failed together without ever retrying at once.
 */
export function backoffMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Retry-After as RFC 9110 allows it (seconds or an HTTP date), in ms from now; undefined when
 * absent or unreadable. Fractions of a second are taken too (the emulators send them in tests).
 */
export function retryAfterMs(
  header: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  // Only a date names a weekday or month: Date.parse alone would take "-1" for a year.
  const at = /[a-z]/i.test(text) ? Date.parse(text) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
