import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The durable job queue: the broker's only way to do work later or elsewhere. Timers (offer
 * expiry, prepare start, end of window) and outgoing worker commands are rows written in the same
 * transaction as the state change that needs them, so a crash loses neither; a job is keyed, so
 * writing it twice queues it once.
 */

export interface JobsTable {
  key: string;
  kind: string;
  payload: string;
  run_at: number;
  attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
  dead: number;
  last_error: string | null;
  created: number;
}

export interface JobTables {
  jobs: JobsTable;
}

export const JOBS_CHANNEL = 'srcnet_jobs';

export const jobMigrations: Record<string, Migration> = {
  '001-jobs': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('jobs')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('run_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'bigint')
        .addColumn('dead', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('created', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_due').on('jobs').columns(['dead', 'run_at']).execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('jobs').execute();
    },
  },
};

export interface NewJob {
  kind: string;
  key: string;
  payload: unknown;
  /** Epoch ms; now when absent. A future time makes the job a durable timer. */
  runAt?: number;
}

/** Queues a job in the caller's transaction; true when it was new, false when the key was queued already. */
export async function enqueue(
  tx: Kysely<JobTables>,
  job: NewJob,
  dialect: 'sqlite' | 'postgres',
): Promise<boolean> {
  const now = Date.now();
  const result = await tx
    .insertInto('jobs')
    .values({
      key: job.key,
      kind: job.kind,
      payload: JSON.stringify(job.payload),
      run_at: job.runAt ?? now,
      attempts: 0,
      lease_owner: null,
      lease_until: null,
      dead: 0,
      last_error: null,
      created: now,
    })
    .onConflict((oc) => oc.column('key').doNothing())
    .executeTakeFirst();
  const created = Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  // Delivered by PostgreSQL when the transaction commits, so other instances wake for it.
  if (created && dialect === 'postgres') await sql`select pg_notify(${JOBS_CHANNEL}, '')`.execute(tx);
  return created;
}

/** Withdraws a job that is no longer wanted (a timer for a step that has moved on). */
export async function cancel(tx: Kysely<JobTables>, key: string): Promise<void> {
  await tx.deleteFrom('jobs').where('key', '=', key).where('lease_owner', 'is', null).execute();
}
