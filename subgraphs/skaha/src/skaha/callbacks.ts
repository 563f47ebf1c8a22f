import { verify } from '@srcnet/service-kit';
import { normaliseStatus } from './status.ts';
import type { SessionCallback, SessionCallbackJson } from './types.ts';

export type CallbackReading = { ok: true; event: SessionCallback } | { ok: false; reason: string };

/**
 * Checks a callback of the Skaha callback extension (signature, replay window, shape) and
 * normalises its statuses. The caller still drops events whose `sequence` is not above the last
 * one it applied for the session: deliveries can repeat and overtake each other.
 */
export function readSessionCallback(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  options: { now?: number; windowSeconds?: number } = {},
): CallbackReading {
  const checked = verify(secret, headers, body, options);
  if (!checked.ok) return checked;
  let json: SessionCallbackJson;
  try {
    json = JSON.parse(body) as SessionCallbackJson;
  } catch {
    return { ok: false, reason: 'the body is not JSON' };
  }
  for (const field of ['eventId', 'sessionId', 'status', 'type', 'time'] as const)
    if (typeof json?.[field] !== 'string') return { ok: false, reason: `${field} must be a string` };
  if (!Number.isSafeInteger(json.sequence) || json.sequence < 1)
    return { ok: false, reason: 'sequence must be a positive integer' };
  if (json.eventId !== checked.eventId)
    return { ok: false, reason: 'eventId differs from the event id header' };
  const { session, ...rest } = json;
  const event: SessionCallback = { ...rest, status: normaliseStatus(json.status), rawStatus: json.status };
  if (session)
    event.session = { ...session, status: normaliseStatus(session.status), rawStatus: session.status };
  return { ok: true, event };
}
