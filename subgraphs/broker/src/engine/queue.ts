import type { Kysely } from 'kysely';
import { currentTraceparent } from '@srcnet/service-kit';
import { prepared } from '../store/prepared.ts';
import { DEAD, QUEUED, type EngineTables, type JobsDb } from './tables.ts';

/** What a caller asks for; `key` makes it idempotent (see enqueue). */
export interface NewJob {
  kind: string;
  /** Unique per piece of work, e.g. `command:<step>:<component>:<action>`. */
  key: string;
  /** Anything JSON can carry. */
  payload: unknown;
  /** Epoch ms; a future time makes the job a durable timer. Default: now. */
  runAt?: number;
}

export type EnqueueResult = 'enqueued' | 'duplicate';

const localWakers = new Set<() => void>();

/**
 * Runners in this process that want to hear of enqueues at once. On SQLite a waker's queries
 * queue behind the caller's open transaction (one connection), so they see the job once committed.
 */
export function onLocalEnqueue(wake: () => void): () => void {
  localWakers.add(wake);
  return () => localWakers.delete(wake);
}

/**
 * Adds a job as part of the caller's transaction, so it exists if and only if the caller's changes
 * commit. The job keeps the caller's trace context, so that its run continues that trace. A job
 * whose key already exists (queued, done and not yet purged, or dead) is left as it is and
 * 'duplicate' returned.
 */
export async function enqueue<DB extends EngineTables>(tx: JobsDb<DB>, job: NewJob): Promise<EnqueueResult> {
  const now = Date.now();
  const result = await insertJob(tx as unknown as Kysely<EngineTables>, {
    key: job.key,
    kind: job.kind,
    payload: JSON.stringify(job.payload ?? null),
    runAt: job.runAt ?? now,
    now,
    traceparent: currentTraceparent(),
  });
  const inserted = Number(result.numAffectedRows ?? 0) > 0;
  if (inserted) for (const wake of localWakers) wake();
  return inserted ? 'enqueued' : 'duplicate';
}

/**
 * Withdraws a job that has not finished (e.g. an offer-expiry timer after accept); the key is then
 * free for a new job. A delivery already under way cannot be recalled, but its outcome is ignored.
 * Returns whether there was such a job.
 */
export async function cancel<DB extends EngineTables>(tx: JobsDb<DB>, key: string): Promise<boolean> {
  const result = await deleteQueuedJob(tx as unknown as Kysely<EngineTables>, { key });
  return Number(result.numAffectedRows) > 0;
}

const insertJob = prepared(
  (
    db: Kysely<EngineTables>,
    v: { key: string; kind: string; payload: string; runAt: number; now: number; traceparent: string | null },
  ) =>
    db
      .insertInto('jobs')
      .values({
        key: v.key,
        kind: v.kind,
        payload: v.payload,
        state: QUEUED,
        run_at: v.runAt,
        attempts: 0,
        claimed_by: null,
        lease_until: null,
        last_error: null,
        created_at: v.now,
        traceparent: v.traceparent,
      })
      .onConflict((conflict) => conflict.column('key').doNothing()),
);

const deleteQueuedJob = prepared((db: Kysely<EngineTables>, v: { key: string }) =>
  db.deleteFrom('jobs').where('key', '=', v.key).where('state', '=', QUEUED),
);

export interface JobStats {
  /** Queued and due now, including jobs whose delivery lease has expired. */
  due: number;
  /** Being delivered under a live lease. */
  claimed: number;
  /** Queued for later: timers and retries after backoff. */
  scheduled: number;
  dead: number;
  /** How long the oldest due job has been waiting, in ms (0 when none is due). */
  oldestDueMs: number;
}

/** Queue health for metrics: one statement, reading the partial indexes of queued and dead jobs. */
export async function jobStats<DB extends EngineTables>(db: JobsDb<DB>, now = Date.now()): Promise<JobStats> {
  const queued = (db as unknown as Kysely<EngineTables>).selectFrom('jobs').where('state', '=', QUEUED);
  const row = await (db as unknown as Kysely<EngineTables>)
    .selectNoFrom((eb) => [
      queued.select(eb.fn.countAll<number>().as('n')).where('run_at', '<=', now).as('due'),
      queued.select(eb.fn.countAll<number>().as('n')).where('lease_until', '>', now).as('claimed'),
      queued
        .select(eb.fn.countAll<number>().as('n'))
        .where('run_at', '>', now)
        .where('lease_until', 'is', null)
        .as('scheduled'),
      queued
        .select((inner) => inner.fn.min('run_at').as('n'))
        .where('run_at', '<=', now)
        .as('oldest'),
      eb.selectFrom('jobs').select(eb.fn.countAll<number>().as('n')).where('state', '=', DEAD).as('dead'),
    ])
    .executeTakeFirstOrThrow();
  return {
    due: Number(row.due),
    claimed: Number(row.claimed),
    scheduled: Number(row.scheduled),
    dead: Number(row.dead),
    oldestDueMs: row.oldest === null ? 0 : now - Number(row.oldest),
  };
}

export interface DeadJob {
  key: string;
  kind: string;
  payload: unknown;
  attempts: number;
  lastError: string | null;
  /** Epoch ms of the last attempt. */
  diedAt: number;
}

/** The dead-letter list, most recent first. */
export async function deadJobs<DB extends EngineTables>(db: JobsDb<DB>, limit = 100): Promise<DeadJob[]> {
  const rows = await (db as unknown as Kysely<EngineTables>)
    .selectFrom('jobs')
    .selectAll()
    .where('state', '=', DEAD)
    .orderBy('run_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    key: row.key,
    kind: row.kind,
    payload: JSON.parse(row.payload),
    attempts: row.attempts,
    lastError: row.last_error,
    diedAt: row.run_at,
  }));
}
