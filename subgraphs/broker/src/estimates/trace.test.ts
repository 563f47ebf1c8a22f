import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { generateTrace } from './synthetic.ts';
import { formatObservation, readTrace, TraceError, writeTrace } from './trace.ts';
import { MemorySink, hourOfDay, type Observation } from './types.ts';

const dir = mkdtempSync(join(tmpdir(), 'estimates-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(source: string | Readable): Promise<Observation[]> {
  const out: Observation[] = [];
  for await (const o of readTrace(source)) out.push(o);
  return out;
}

async function firstError(lines: string[]): Promise<TraceError> {
  try {
    await collect(Readable.from([lines.join('\n')]));
  } catch (error) {
    expect(error).toBeInstanceOf(TraceError);
    return error as TraceError;
  }
  throw new Error('expected the trace to be rejected');
}

const good: Observation = {
  action: 'data-staging',
  params: { bytes: 1e9, sourceSite: 'SPSRC_STORM', targetStorage: 'scratch', inFlight: 2 },
  startedAt: '2026-01-05T10:00:00.000Z',
  durationSeconds: 42.5,
  outcome: 'ok',
};
const line = (patch: Record<string, unknown>, params: Record<string, unknown> = {}) =>
  JSON.stringify({ ...good, ...patch, params: { ...good.params, ...params } });

describe('trace files', () => {
  it('round-trips a generated trace through a file, line for line', async () => {
    const trace = generateTrace({ seed: 11, count: 500, drift: 0.4 });
    const path = join(dir, 'round.jsonl');
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await writeTrace(trace, out);
    out.end();
    writeFileSync(path, Buffer.concat(chunks));
    const read = await collect(path);
    expect(read).toEqual(trace);
    expect(Buffer.concat(chunks).toString().split('\n')).toHaveLength(501);
  });

  it('keeps params beyond the required ones and skips blank lines', async () => {
    const text = `\n${line({}, { checksum: 'adler32:1' })}\n\n`;
    const [o] = await collect(Readable.from([text]));
    expect(o!.params).toMatchObject({ checksum: 'adler32:1', bytes: 1e9 });
  });

  it('writes fields in a fixed order', () => {
    const shuffled = {
      outcome: 'ok',
      durationSeconds: 1,
      params: good.params,
      startedAt: good.startedAt,
      action: good.action,
    };
    expect(formatObservation(shuffled as Observation)).toMatch(
      /^\{"action":.*"params":.*"startedAt":.*"durationSeconds":.*"outcome":/,
    );
  });

  it.each([
    ['durationSeconds must be a non-negative number', line({ durationSeconds: -1 })],
    ['durationSeconds must be a non-negative number', line({ durationSeconds: '5' })],
    ['params.bytes must be a non-negative number for data-staging', line({}, { bytes: -3 })],
    ['params.inFlight must be a non-negative integer for data-staging', line({}, { inFlight: 1.5 })],
    ['params.sourceSite must be a non-empty string for data-staging', line({}, { sourceSite: '' })],
    [
      'params.local must be a boolean for image-copy',
      line({ action: 'image-copy' }, { registry: 'ghcr.io', local: 'yes' }),
    ],
    [
      'params.cores must be a positive number for session-start',
      line({ action: 'session-start' }, { type: 'notebook', cores: 0, memoryGiB: 4 }),
    ],
    ['action must be one of data-staging, image-copy, session-start', line({ action: 'compile' })],
    ['startedAt must be an ISO-8601 date-time with a zone', line({ startedAt: '2026-01-05 10:00' })],
    ['startedAt must be an ISO-8601 date-time with a zone', line({ startedAt: '2026-13-45T10:00:00Z' })],
    ['outcome must be "ok" or "failed"', line({ outcome: 'timeout' })],
    ['params must be an object', JSON.stringify({ ...good, params: [] })],
    ['an observation must be a JSON object', '[1, 2]'],
  ])('names the line, field and rule: %s', async (detail, bad) => {
    const error = await firstError([line({}), '', bad, line({})]);
    expect(error.message).toBe(`line 3: ${detail}`);
    expect(error.line).toBe(3);
  });

  it('reports malformed JSON with its line number', async () => {
    const error = await firstError([line({}), '{"action": "data-staging",']);
    expect(error.message).toMatch(/^line 2: not valid JSON \(/);
  });
});

describe('observations', () => {
  it('keeps what a memory sink records, in order', () => {
    const sink = new MemorySink();
    const trace = generateTrace({ seed: 12, count: 20, drift: 0 });
    for (const o of trace) sink.record(o);
    expect(sink.observations).toEqual(trace);
  });

  it('derives the UTC hour of day from startedAt', () => {
    expect(hourOfDay('2026-01-05T13:30:00+02:00')).toBe(11.5);
    expect(hourOfDay('2026-01-05T00:00:00Z')).toBe(0);
  });
});
