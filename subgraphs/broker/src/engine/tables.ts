import { sql, type Kysely, type Transaction } from 'kysely';
import { notifyOnInsert } from '../store/dialect.ts';
import type { Migrations } from '../store/index.ts';

/** queued: waiting or being delivered; done: kept for key deduplication until purged; dead: gave up. */
export type JobState = 'queued' | 'done' | 'dead';

/**
 * States as literals rather than bound parameters, for queries that must use a partial index:
 * SQLite picks one only when the query's condition visibly matches the index's.
 */
export const QUEUED = sql.lit<JobState>('queued');
export const DONE = sql.lit<JobState>('done');
export const DEAD = sql.lit<JobState>('dead');

/**
 * One row per job, keyed by the caller's idempotency key. `run_at` is the one column the runner
 * orders by: for a queued job it is when the job is next due, and a claim for delivery sets it to
 * the end of the lease, so that a crashed instance's job becomes due again by itself; for a done
 * or dead job it is when it finished.
 */
export interface JobsTable {
  key: string;
  kind: string;
  /** JSON text. */
  payload: string;
  state: JobState;
  run_at: number;
  /** Runs started so far, including the current one. */
  attempts: number;
  /** The instance delivering the job, or the one that finished it. */
  claimed_by: string | null;
  lease_until: number | null;
  last_error: string | null;
  created_at: number;
  /** W3C traceparent of the work that enqueued the job: its run continues that trace. */
  traceparent: string | null;
}

export interface EngineTables {
  jobs: JobsTable;
}

/**
 * A connection or transaction whose schema includes the engine's tables. (Spelled as a union so
 * that TypeScript infers DB from a Transaction as well.)
 */
export type JobsDb<DB extends EngineTables> = Kysely<DB> | Transaction<DB>;

/** PostgreSQL channel that wakes every instance when jobs are inserted. */
export const JOBS_CHANNEL = 'srcnet_jobs';

export const engineMigrations: Migrations = {
  '000-engine-jobs': {
    async up(db: Kysely<unknown>, dialect) {
      await db.schema
        .createTable('jobs')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('run_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('claimed_by', 'text')
        .addColumn('lease_until', 'bigint')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      // Partial indexes only, so that each query has exactly one fitting index: the runner's
      // claims go kind by kind through the small index of queued jobs, so a backlog of one kind
      // never slows finding another's; purging and the dead-letter list have their own.
      for (const [name, columns, state] of [
        ['jobs_queued', ['kind', 'run_at'], 'queued'],
        ['jobs_done', ['run_at'], 'done'],
        ['jobs_dead', ['run_at'], 'dead'],
      ] as const) {
        await db.schema
          .createIndex(name)
          .on('jobs')
          .columns([...columns])
          .where(sql.ref('state'), '=', state)
          .execute();
      }
      await notifyOnInsert(db, dialect, 'jobs', JOBS_CHANNEL);
    },
  },
  // Named after the domain's migrations already applied at sites, since a name sorting before
  // an applied one would be refused.
  '111-jobs-traceparent': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('jobs').addColumn('traceparent', 'text').execute();
    },
  },
};
