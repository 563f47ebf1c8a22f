import { nestingProblem, verify } from '@srcnet/service-kit';
import { normaliseStatus } from './status.ts';
import type { SessionCallback, SessionCallbackJson } from './types.ts';

/** A failed reading is `malformed` when the signature held and the body is wrong (a 400, not a 401). */
export type CallbackReading =
  { ok: true; event: SessionCallback } | { ok: false; reason: string; malformed?: true };

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
    return { ok: false, reason: 'the body is not JSON', malformed: true };
  }
  const tooDeep = nestingProblem(json);
  if (tooDeep) return { ok: false, reason: `${tooDeep.path}: ${tooDeep.message}`, malformed: true };
  const problem = shapeProblem(json);
  if (problem) return { ok: false, reason: problem, malformed: true };
  if (json.eventId !== checked.eventId)
    return { ok: false, reason: 'eventId differs from the event id header', malformed: true };
  const { session, ...rest } = json;
  const event: SessionCallback = { ...rest, status: normaliseStatus(json.status), rawStatus: json.status };
  if (session)
    event.session = { ...session, status: normaliseStatus(session.status), rawStatus: session.status };
  return { ok: true, event };
}

const SESSION_STRINGS = ['id', 'userid', 'image', 'type', 'status', 'name'] as const;
const SESSION_OPTIONAL_STRINGS = [
  'runAsUID',
  'runAsGID',
  'appid',
  'startTime',
  'expiryTime',
  'connectURL',
  'requestedRAM',
  'requestedCPUCores',
  'requestedGPUCores',
  'ramInUse',
  'cpuCoresInUse',
  'gpuRAMInUse',
  'gpuUtilization',
] as const;

/**
 * What is wrong with a notification's shape, naming the field; undefined when nothing is. Every
 * field the worker reads or keeps is checked: a signed but malformed event must not reach the
 * tracker (a 500) or its stored session snapshot (served later by the subgraph).
 */
function shapeProblem(json: SessionCallbackJson): string | undefined {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return 'the body must be a JSON object';
  for (const field of ['eventId', 'sessionId', 'status', 'type', 'time', 'name', 'instance'] as const)
    if (typeof json[field] !== 'string') return `${field} must be a string`;
  if (json.type !== 'session.status' && json.type !== 'session.deleted')
    return 'type must be session.status or session.deleted';
  if (Number.isNaN(Date.parse(json.time))) return 'time must be an ISO-8601 date-time';
  if (!Number.isSafeInteger(json.sequence) || json.sequence < 1) return 'sequence must be a positive integer';
  if (json.message !== undefined && typeof json.message !== 'string') return 'message must be a string';
  if (
    json.previousStatus !== null &&
    json.previousStatus !== undefined &&
    typeof json.previousStatus !== 'string'
  )
    return 'previousStatus must be a string or null';
  const session = json.session as unknown;
  if (session === undefined) return undefined;
  if (session === null || typeof session !== 'object' || Array.isArray(session))
    return 'session must be an object';
  const fields = session as Record<string, unknown>;
  for (const field of SESSION_STRINGS)
    if (typeof fields[field] !== 'string') return `session.${field} must be a string`;
  for (const field of SESSION_OPTIONAL_STRINGS)
    if (fields[field] !== undefined && typeof fields[field] !== 'string')
      return `session.${field} must be a string`;
  if (fields['isFixedResources'] !== undefined && typeof fields['isFixedResources'] !== 'boolean')
    return 'session.isFixedResources must be a boolean';
  return undefined;
}
