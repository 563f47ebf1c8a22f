/**
 * The stored preparation observations as trace files (ARCHITECTURE.md, "Estimation history"):
 * exported one observation a line, and imported back, checked line by line, without duplicates.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { formatObservation, readTrace, type Action, type Observation } from '../estimates/index.ts';
import { observations, type Db } from './store.ts';
import type { PreparationObservationsTable } from './tables.ts';

/** Writes every stored observation in the order the broker learned of them; returns how many. */
export async function exportObservations(db: Db, out: Writable): Promise<number> {
  let n = 0;
  for await (const record of observations(db)) {
    if (!out.write(formatObservation(record.observation) + '\n')) await once(out, 'drain');
    n += 1;
  }
  return n;
}

export interface ImportResult {
  /** Observations in the trace. */
  read: number;
  /** Of those, the ones the store did not hold yet. */
  added: number;
}

/** The component an action prepares, as the broker records it. */
const ROLE: Record<Action, string> = {
  'data-staging': 'data',
  'image-copy': 'executable',
  'session-start': 'compute',
};
/** Marks imported rows: they came from no callback and belong to no step of this broker. */
export const IMPORTED = 'imported';
const BATCH = 500;

/**
 * Adds a trace's observations to the store in one transaction: a bad line (reported by number,
 * field and rule, as readTrace does) adds nothing. An observation the store already holds (same
 * action, params, start and duration, whether recorded from a callback or imported before) is
 * not added again, so importing a file twice, or an export back into its own store, changes
 * nothing. Each is ordered for replay by when it finished, as the broker would have learned of it.
 */
export async function importObservations(db: Db, source: string | Readable): Promise<ImportResult> {
  return db.transaction().execute(async (tx) => {
    const result: ImportResult = { read: 0, added: 0 };
    let batch: Observation[] = [];
    const flush = async () => {
      result.added += await addNew(tx, batch);
      batch = [];
    };
    for await (const observation of readTrace(source)) {
      result.read += 1;
      batch.push(observation);
      if (batch.length === BATCH) await flush();
    }
    await flush();
    return result;
  });
}

/** What makes two observations the same one; params compared whatever their key order. */
function identity(o: { action: string; params: object; startedAtMs: number; durationSeconds: number }) {
  const params = Object.fromEntries(Object.entries(o.params).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify([o.action, params, o.startedAtMs, o.durationSeconds]);
}

async function addNew(tx: Db, batch: Observation[]): Promise<number> {
  if (batch.length === 0) return 0;
  const starts = [...new Set(batch.map((o) => Date.parse(o.startedAt)))];
  const stored = await tx
    .selectFrom('preparation_observations')
    .select(['action', 'params', 'started_at', 'duration_seconds'])
    .where('started_at', 'in', starts)
    .execute();
  const seen = new Set(
    stored.map((row) =>
      identity({
        action: row.action,
        params: JSON.parse(row.params),
        startedAtMs: Number(row.started_at),
        durationSeconds: Number(row.duration_seconds),
      }),
    ),
  );
  const rows: PreparationObservationsTable[] = [];
  for (const o of batch) {
    const startedAtMs = Date.parse(o.startedAt);
    const key = identity({ ...o, startedAtMs });
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({
      event_id: `${IMPORTED}:${createHash('sha256').update(key).digest('hex').slice(0, 32)}`,
      step_id: IMPORTED,
      component_uuid: '',
      role: ROLE[o.action],
      kind: '',
      action: o.action,
      params: JSON.stringify(o.params),
      started_at: startedAtMs,
      duration_seconds: o.durationSeconds,
      outcome: o.outcome,
      recorded_at: Math.round(startedAtMs + o.durationSeconds * 1000),
    });
  }
  if (rows.length === 0) return 0;
  const [inserted] = await tx
    .insertInto('preparation_observations')
    .values(rows)
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
  return Number(inserted?.numInsertedOrUpdatedRows ?? 0);
}
