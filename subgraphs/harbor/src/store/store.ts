/**
 * What the worker must not forget across restarts, in SQLite: the commands it took (so a
 * redelivery takes effect at most once), each step's image and copy, the callbacks to the
 * broker (the shared outbox: pending ones and each component's last), and the copies it observed
 * (the history estimates learn from).
 */
import type { Kysely } from 'kysely';
import { sql, type Generated, type Selectable } from 'kysely';
import { openWorkerStore, type CommandTables, type OutboxTables } from '@srcnet/service-kit';

/** Where a step's image copy stands. */
export type CopyState = 'CHECKING' | 'NOT_NEEDED' | 'COPYING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

export interface ImagesTable {
  component_uuid: string;
  step_id: string;
  owner: string;
  callback_url: string;
  /** The location chosen (or the first, before one is found). */
  reference: string;
  expected_digest: string | null;
  digest: string | null;
  size_bytes: number | null;
  available_locally: number;
  local_reference: string | null;
  /** project/repository in the local Harbor. */
  local_repository: string | null;
  copy_state: CopyState;
  mode: 'replication' | 'proxy-cache' | null;
  execution_id: number | null;
  bytes_done: number | null;
  estimated_copy_seconds: number | null;
  message: string | null;
  /** Component phase last reported: PREPARING, AVAILABLE, COMPLETED, FAILED, CANCELLED. */
  phase: string;
  copy_started_at: string | null;
  updated_at: string;
  /**
   * W3C traceparent of the command that prepared the image: the end of its copy, from a webhook or
   * the watcher, joins that trace (null outside a trace).
   */
  traceparent: string | null;
}

export interface ObservationsTable {
  id: Generated<number>;
  registry: string;
  bytes: number;
  local: number;
  duration_seconds: number;
  outcome: 'ok' | 'failed';
  started_at: string;
}

export interface Tables extends OutboxTables, CommandTables {
  images: ImagesTable;
  observations: ObservationsTable;
}

export type ImageRow = Selectable<ImagesTable>;
export type Db = Kysely<Tables>;

export async function openStore(path: string): Promise<Db> {
  const db = await openWorkerStore<Tables>(path);
  await db.schema
    .createTable('images')
    .ifNotExists()
    .addColumn('component_uuid', 'text', (c) => c.primaryKey())
    .addColumn('step_id', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('callback_url', 'text', (c) => c.notNull())
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('expected_digest', 'text')
    .addColumn('digest', 'text')
    .addColumn('size_bytes', 'integer')
    .addColumn('available_locally', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('local_reference', 'text')
    .addColumn('local_repository', 'text')
    .addColumn('copy_state', 'text', (c) => c.notNull())
    .addColumn('mode', 'text')
    .addColumn('execution_id', 'integer')
    .addColumn('bytes_done', 'integer')
    .addColumn('estimated_copy_seconds', 'real')
    .addColumn('message', 'text')
    .addColumn('phase', 'text', (c) => c.notNull())
    .addColumn('copy_started_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // Added after sites had the table: one path for new and existing files.
  const images = await sql<{ name: string }>`PRAGMA table_info(images)`.execute(db);
  if (!images.rows.some((column) => column.name === 'traceparent'))
    await sql`ALTER TABLE images ADD COLUMN traceparent TEXT`.execute(db);
  await db.schema.createIndex('images_step').ifNotExists().on('images').column('step_id').execute();
  await db.schema.createIndex('images_execution').ifNotExists().on('images').column('execution_id').execute();
  await db.schema
    .createTable('observations')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('registry', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('local', 'integer', (c) => c.notNull())
    .addColumn('duration_seconds', 'real', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .execute();
  return db;
}
