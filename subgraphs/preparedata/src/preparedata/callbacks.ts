import { verify } from '@srcnet/service-kit';
import type { PrepareDataApiMapping } from './mapping.ts';
import { DEFAULT_PREPAREDATA_MAPPING } from './mapping.ts';
import type { StageCallbackEvent } from './types.ts';

/** A failed reading is `malformed` when the signature held and the body is wrong (a 400, not a 401). */
export type StageCallbackResult =
  { ok: true; event: StageCallbackEvent } | { ok: false; reason: string; malformed?: true };

export interface ReadCallbackOptions {
  mapping?: PrepareDataApiMapping;
  now?: number;
  windowSeconds?: number;
}

/**
 * Verifies and decodes one prepareData notification. `rawBody` must be the bytes as received:
 * the signature covers them, not a re-serialisation. Duplicates and order are the receiver's
 * concern (event id and sequence), not this function's.
 */
export function readStageCallback(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  options: ReadCallbackOptions = {},
): StageCallbackResult {
  const verified = verify(secret, headers, rawBody, options);
  if (!verified.ok) return verified;
  const mapping = options.mapping ?? DEFAULT_PREPAREDATA_MAPPING;
  let event: StageCallbackEvent;
  try {
    event = mapping.decodeCallback(JSON.parse(rawBody), mapping);
  } catch (error) {
    return {
      ok: false,
      reason: `callback body is not a stage event: ${(error as Error).message}`,
      malformed: true,
    };
  }
  if (event.eventId !== verified.eventId)
    return {
      ok: false,
      reason: `event id header ${verified.eventId} does not match body event_id ${event.eventId}`,
      malformed: true,
    };
  return { ok: true, event };
}
