import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * One signature scheme for every callback in the system (backend emulators -> workers,
 * workers -> broker): HMAC-SHA256 over `${timestamp}.${body}`, so that a captured body
 * cannot be replayed with a fresh timestamp and a stale one falls outside the window.
 */
export const SIGNATURE_HEADER = 'x-srcnet-signature';
export const TIMESTAMP_HEADER = 'x-srcnet-timestamp';
export const EVENT_ID_HEADER = 'x-srcnet-event-id';

export const DEFAULT_REPLAY_WINDOW_SECONDS = 300;

export function sign(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Headers to send with a callback body. */
export function signedHeaders(
  secret: string,
  body: string,
  eventId: string,
  now: number = Date.now(),
): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'content-type': 'application/json',
    [SIGNATURE_HEADER]: sign(secret, timestamp, body),
    [TIMESTAMP_HEADER]: String(timestamp),
    [EVENT_ID_HEADER]: eventId,
  };
}

export type VerifyResult = { ok: true; eventId: string } | { ok: false; reason: string };

/** Checks a received callback; the reason names the header and what is wrong with it. */
export function verify(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  options: { now?: number; windowSeconds?: number } = {},
): VerifyResult {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const signature = header(SIGNATURE_HEADER);
  const timestampText = header(TIMESTAMP_HEADER);
  const eventId = header(EVENT_ID_HEADER);
  if (!signature) return { ok: false, reason: `missing ${SIGNATURE_HEADER} header` };
  if (!timestampText || !/^\d{1,12}$/.test(timestampText))
    return { ok: false, reason: `${TIMESTAMP_HEADER} must be a Unix time in seconds` };
  if (!eventId) return { ok: false, reason: `missing ${EVENT_ID_HEADER} header` };
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const window = options.windowSeconds ?? DEFAULT_REPLAY_WINDOW_SECONDS;
  if (Math.abs(now - timestamp) > window)
    return { ok: false, reason: `${TIMESTAMP_HEADER} is outside the ${window}s replay window` };
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return { ok: false, reason: `${SIGNATURE_HEADER} does not match the body` };
  return { ok: true, eventId };
}
