import type { Kysely, Migration } from 'kysely';

/**
 * The broker's own tables (the job queue's live in engine/). Times are epoch milliseconds and
 * documents JSON text, the same in SQLite and PostgreSQL.
 */
export interface StepsTable {
  id: string;
  offer_set_id: string | null;
  owner: string;
  phase: string;
  executable_kind: string | null;
  created: number;
  modified: number;
  expires: number | null;
  available_start: number;
  available_end: number;
  cores: number;
  memory_gib: number;
  storage_gib: number;
  document: string;
  version: number;
  /** JSON text of the estimate the offer's start rested on (Ivoa.PreparationEstimates); null before 120. */
  estimates: string | null;
}

export interface OfferSetsTable {
  id: string;
  owner: string;
  result: string;
  created: number;
  expires: number;
  document: string;
}

export interface StepHistoryTable {
  step_id: string;
  seq: number;
  at: number;
  from_phase: string | null;
  to_phase: string;
  cause: string;
}

/** The last callback applied per component, so that a late or repeated one changes nothing. */
export interface ComponentCallbacksTable {
  component_uuid: string;
  step_id: string;
  sequence: number;
  /** When that callback was applied (epoch ms; null before 130): reconciliation asks about the quiet ones. */
  applied_at: number | null;
}

/**
 * What each preparation action took, as the workers reported it (ARCHITECTURE.md, "Estimation
 * history"): the estimator's history, replayed into it when the broker starts.
 */
export interface PreparationObservationsTable {
  /** The callback that carried it: a repeated callback records nothing twice. */
  event_id: string;
  step_id: string;
  component_uuid: string;
  role: string;
  kind: string;
  action: string;
  /** JSON text of the action's params. */
  params: string;
  started_at: number;
  duration_seconds: number;
  outcome: string;
  /** When the broker learned of it: the order observations are replayed in. */
  recorded_at: number;
}

export interface BrokerTables {
  steps: StepsTable;
  offer_sets: OfferSetsTable;
  step_history: StepHistoryTable;
  component_callbacks: ComponentCallbacksTable;
  preparation_observations: PreparationObservationsTable;
}

export const stepMigrations: Record<string, Migration> = {
  '100-steps': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('offer_sets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('created', 'bigint', (c) => c.notNull())
        .addColumn('expires', 'bigint', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('steps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('offer_set_id', 'text')
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('executable_kind', 'text')
        .addColumn('created', 'bigint', (c) => c.notNull())
        .addColumn('modified', 'bigint', (c) => c.notNull())
        .addColumn('expires', 'bigint')
        .addColumn('available_start', 'bigint', (c) => c.notNull())
        .addColumn('available_end', 'bigint', (c) => c.notNull())
        .addColumn('cores', 'integer', (c) => c.notNull())
        .addColumn('memory_gib', 'integer', (c) => c.notNull())
        .addColumn('storage_gib', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('steps_owner_created')
        .on('steps')
        .columns(['owner', 'created', 'id'])
        .execute();
      await db.schema.createIndex('steps_created').on('steps').columns(['created', 'id']).execute();
      await db.schema.createIndex('steps_offer_set').on('steps').column('offer_set_id').execute();
      await db.schema.createIndex('steps_booked').on('steps').columns(['phase', 'available_end']).execute();
      await db.schema
        .createTable('step_history')
        .addColumn('step_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('from_phase', 'text')
        .addColumn('to_phase', 'text', (c) => c.notNull())
        .addColumn('cause', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('step_history_pk', ['step_id', 'seq'])
        .execute();
      await db.schema
        .createTable('component_callbacks')
        .addColumn('component_uuid', 'text', (c) => c.primaryKey())
        .addColumn('step_id', 'text', (c) => c.notNull())
        .addColumn('sequence', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of ['component_callbacks', 'step_history', 'steps', 'offer_sets'])
        await db.schema.dropTable(table).execute();
    },
  },
  '101-preparation-observations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('preparation_observations')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('step_id', 'text', (c) => c.notNull())
        .addColumn('component_uuid', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('duration_seconds', 'double precision', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('recorded_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('preparation_observations_recorded')
        .on('preparation_observations')
        .columns(['recorded_at', 'event_id'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('preparation_observations').execute();
    },
  },
  // For `modifiedAfter`: the gateway's catch-up lists the steps changed in the last few seconds.
  '110-steps-modified': {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('steps_modified').on('steps').column('modified').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('steps_modified').execute();
    },
  },
  // Kept as made, not recomputed: the estimator learns on, and the step's figures must stay the
  // ones its offered start used.
  '120-step-estimates': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').addColumn('estimates', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').dropColumn('estimates').execute();
    },
  },
  // Reconciliation with the workers asks only about components that have been quiet for a while.
  '130-component-callbacks-applied-at': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('component_callbacks').addColumn('applied_at', 'bigint').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('component_callbacks').dropColumn('applied_at').execute();
    },
  },
};
