/**
 * What the worker must not forget across restarts, in SQLite: the commands it took (so that a
 * redelivery takes effect at most once), each storage and data component it prepared with its
 * staging job, and the callbacks to the broker (the shared outbox: pending ones and each
 * component's last).
 */
import type { Kysely } from 'kysely';
import { sql, type Selectable } from 'kysely';
import { openWorkerStore, type CommandTables, type OutboxTables } from '@srcnet/service-kit';

/**
 * SUBMITTING: the command was taken, the job not yet accepted by prepareData. ALLOCATED: a storage
 * component (nothing to move). The rest are prepareData's job states.
 */
export type StagingState =
  'SUBMITTING' | 'ALLOCATED' | 'QUEUED' | 'STAGING' | 'COMPLETED' | 'FAILED' | 'RELEASED' | 'EXPIRED';

export interface ComponentsTable {
  component_uuid: string;
  step_id: string;
  owner: string;
  role: 'storage' | 'data';
  name: string | null;
  callback_url: string;
  /** `namespace:name` for a DID, the URL otherwise; null for storage. */
  source: string | null;
  source_kind: 'did' | 'url' | null;
  source_site: string | null;
  storage_area: string;
  job_id: string | null;
  state: StagingState;
  /** The component phase last reported to the broker. */
  phase: string;
  bytes_done: number;
  bytes_total: number | null;
  /** Bytes per second, smoothed over the last progress reports. */
  rate: number | null;
  sample_at: number | null;
  sample_bytes: number | null;
  local_path: string | null;
  expires_at: string | null;
  message: string | null;
  /** End of the step's available window (epoch ms); moved by extendDataLifetime. */
  window_end: number;
  release_ms: number;
  /** The lifetime last asked of prepareData, seconds. */
  lifetime_seconds: number | null;
  /** The last prepareData event applied, so that repeats and stale ones change nothing. */
  event_sequence: number;
  progress_sent_at: number;
  started_at: string | null;
  updated_at: string;
  /**
   * W3C traceparent of the command that prepared the component: what prepareData's notifications
   * and the watcher later report about its job joins that trace (null outside a trace).
   */
  traceparent: string | null;
}

export interface Tables extends OutboxTables, CommandTables {
  components: ComponentsTable;
}

export type Db = Kysely<Tables>;
export type ComponentRow = Selectable<ComponentsTable>;

/** States after which prepareData changes nothing more for the job. */
export const SETTLED: readonly StagingState[] = ['FAILED', 'RELEASED', 'EXPIRED'];

export async function openStore(path: string): Promise<Db> {
  const db = await openWorkerStore<Tables>(path);
  await sql`CREATE TABLE IF NOT EXISTS components (
    component_uuid TEXT PRIMARY KEY, step_id TEXT NOT NULL, owner TEXT NOT NULL, role TEXT NOT NULL,
    name TEXT, callback_url TEXT NOT NULL, source TEXT, source_kind TEXT, source_site TEXT,
    storage_area TEXT NOT NULL, job_id TEXT, state TEXT NOT NULL, phase TEXT NOT NULL,
    bytes_done INTEGER NOT NULL DEFAULT 0, bytes_total INTEGER, rate REAL, sample_at INTEGER,
    sample_bytes INTEGER, local_path TEXT, expires_at TEXT, message TEXT, window_end INTEGER NOT NULL,
    release_ms INTEGER NOT NULL, lifetime_seconds INTEGER, event_sequence INTEGER NOT NULL DEFAULT -1,
    progress_sent_at INTEGER NOT NULL DEFAULT 0, started_at TEXT, updated_at TEXT NOT NULL)`.execute(db);
  // Added after sites had the table: one path for new and existing files.
  const components = await sql<{ name: string }>`PRAGMA table_info(components)`.execute(db);
  if (!components.rows.some((column) => column.name === 'traceparent'))
    await sql`ALTER TABLE components ADD COLUMN traceparent TEXT`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS components_step ON components (step_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS components_job ON components (job_id)`.execute(db);
  return db;
}
