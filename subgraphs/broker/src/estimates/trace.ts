/**
 * JSON Lines traces of observations: one observation a line, validated line by line so that a bad
 * line in a million-line trace is reported by number, field and rule.
 */
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ACTIONS, type Action, type Observation } from './types.ts';

export class TraceError extends Error {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'TraceError';
  }
}

type Rule = [field: string, check: (value: unknown) => boolean, rule: string];

const nonNegativeNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const positiveNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const count = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
const name = (v: unknown) => typeof v === 'string' && v.length > 0;

const PARAM_RULES: Record<Action, Rule[]> = {
  'data-staging': [
    ['bytes', nonNegativeNumber, 'a non-negative number'],
    ['sourceSite', name, 'a non-empty string'],
    ['targetStorage', (v) => typeof v === 'string', 'a string'],
    ['inFlight', count, 'a non-negative integer'],
  ],
  'image-copy': [
    ['bytes', nonNegativeNumber, 'a non-negative number'],
    ['registry', name, 'a non-empty string'],
    ['local', (v) => typeof v === 'boolean', 'a boolean'],
  ],
  'session-start': [
    ['type', name, 'a non-empty string'],
    ['cores', positiveNumber, 'a positive number'],
    ['memoryGiB', positiveNumber, 'a positive number'],
    ['inFlight', count, 'a non-negative integer'],
  ],
};

// Date.parse alone accepts forms such as "March 7" that other readers of a trace would not.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks one decoded trace line; `line` numbers the error. */
export function parseObservation(value: unknown, line: number): Observation {
  const fail = (detail: string): never => {
    throw new TraceError(line, detail);
  };
  if (!isObject(value)) fail('an observation must be a JSON object');
  const v = value as Record<string, unknown>;
  if (!ACTIONS.includes(v.action as Action)) fail(`action must be one of ${ACTIONS.join(', ')}`);
  const action = v.action as Action;
  if (!isObject(v.params)) fail('params must be an object');
  const params = v.params as Record<string, unknown>;
  for (const [field, check, rule] of PARAM_RULES[action]) {
    if (!check(params[field])) fail(`params.${field} must be ${rule} for ${action}`);
  }
  if (
    typeof v.startedAt !== 'string' ||
    !ISO_INSTANT.test(v.startedAt) ||
    Number.isNaN(Date.parse(v.startedAt))
  )
    fail('startedAt must be an ISO-8601 date-time with a zone');
  if (!nonNegativeNumber(v.durationSeconds)) fail('durationSeconds must be a non-negative number');
  if (v.outcome !== 'ok' && v.outcome !== 'failed') fail('outcome must be "ok" or "failed"');
  return {
    action,
    params,
    startedAt: v.startedAt,
    durationSeconds: v.durationSeconds,
    outcome: v.outcome,
  } as unknown as Observation;
}

/** Parses one text line of a trace. */
export function parseLine(text: string, line: number): Observation {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TraceError(line, `not valid JSON (${(error as Error).message})`);
  }
  return parseObservation(value, line);
}

/** Streams the observations of a trace file or stream; blank lines are skipped. */
export async function* readTrace(source: string | Readable): AsyncGenerator<Observation> {
  const input = typeof source === 'string' ? createReadStream(source, 'utf8') : source;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line += 1;
    if (text.trim() !== '') yield parseLine(text, line);
  }
}

/** One trace line, without the newline; field order fixed so that traces diff cleanly. */
export function formatObservation(o: Observation): string {
  return JSON.stringify({
    action: o.action,
    params: o.params,
    startedAt: o.startedAt,
    durationSeconds: o.durationSeconds,
    outcome: o.outcome,
  });
}

/** Writes observations as JSON Lines, waiting whenever the stream asks to. */
export async function writeTrace(observations: Iterable<Observation>, out: Writable): Promise<void> {
  for (const o of observations) {
    if (!out.write(formatObservation(o) + '\n')) await once(out, 'drain');
  }
}
