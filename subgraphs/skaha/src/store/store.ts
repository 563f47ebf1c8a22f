/**
 * What the worker must not forget across restarts, in SQLite: the commands it took (a redelivery
 * takes effect at most once), each step's Skaha session and what was last reported about it, and
 * the callbacks to the broker (the shared outbox: pending ones and each component's last).
 */
import type { Kysely } from 'kysely';
import { sql, type Selectable } from 'kysely';
import { openWorkerStore, type CommandTables, type OutboxTables } from '@srcnet/service-kit';

/** What the worker was asked to do with a session last: run it, release it, or cancel it. */
export type Intent = 'run' | 'release' | 'cancel';

export interface SessionsTable {
  /** The compute component the session stands for. */
  component_uuid: string;
  step_id: string;
  owner: string;
  callback_url: string;
  /** Skaha's name: derived from the step id, so a create can be looked up before a retry. */
  name: string;
  type: string;
  image: string;
  /** What the session is guaranteed: the fixed values, or the flexible request. */
  cores: number;
  memory_gib: number;
  fixed: number;
  /** Sessions of this worker that were starting when this one was created (estimation history). */
  in_flight: number;
  /** Null until the create answered. */
  session_id: string | null;
  intent: Intent;
  /** Skaha's status last seen (normalised), or `Deleted` once gone. */
  status: string | null;
  /** The highest callback-extension sequence applied. */
  skaha_sequence: number;
  /** The component phase last reported to the broker. */
  phase: string;
  /** The session JSON last seen, shown once Skaha no longer lists it. */
  snapshot: string | null;
  message: string | null;
  create_requested_at: number;
  /** When the create answered: sessions created after a listing began are not judged by it. */
  created_at: number | null;
  delete_requested_at: number | null;
  updated_at: number;
  /**
   * W3C traceparent of the command that last acted on the session: what Skaha's callbacks and the
   * watcher later report about it joins that trace (null outside a trace).
   */
  traceparent: string | null;
}

export interface Tables extends OutboxTables, CommandTables {
  sessions: SessionsTable;
}

export type SessionRow = Selectable<SessionsTable>;
export type Db = Kysely<Tables>;

export async function openStore(path: string): Promise<Db> {
  const db = await openWorkerStore<Tables>(path);
  await db.schema
    .createTable('sessions')
    .ifNotExists()
    .addColumn('component_uuid', 'text', (c) => c.primaryKey())
    .addColumn('step_id', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('callback_url', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('image', 'text', (c) => c.notNull())
    .addColumn('cores', 'real', (c) => c.notNull())
    .addColumn('memory_gib', 'real', (c) => c.notNull())
    .addColumn('fixed', 'integer', (c) => c.notNull())
    .addColumn('in_flight', 'integer', (c) => c.notNull())
    .addColumn('session_id', 'text')
    .addColumn('intent', 'text', (c) => c.notNull())
    .addColumn('status', 'text')
    .addColumn('skaha_sequence', 'integer', (c) => c.notNull())
    .addColumn('phase', 'text', (c) => c.notNull())
    .addColumn('snapshot', 'text')
    .addColumn('message', 'text')
    .addColumn('create_requested_at', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'integer')
    .addColumn('delete_requested_at', 'integer')
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .execute();
  // Added after sites had the table: one path for new and existing files.
  const sessions = await sql<{ name: string }>`PRAGMA table_info(sessions)`.execute(db);
  if (!sessions.rows.some((column) => column.name === 'traceparent'))
    await sql`ALTER TABLE sessions ADD COLUMN traceparent TEXT`.execute(db);
  await db.schema.createIndex('sessions_step').ifNotExists().on('sessions').column('step_id').execute();
  await db.schema.createIndex('sessions_session').ifNotExists().on('sessions').column('session_id').execute();
  return db;
}
