import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateOutbox, type OutboxTables } from '../callbacks/outbox.ts';
import { migrateCommands, type CommandTables } from '../commands/inbox.ts';

/**
 * A worker's SQLite file, set up the same way in every worker: WAL, so that the GraphQL reads do
 * not wait for the command handlers' writes; synchronous NORMAL, which in WAL mode loses at most
 * the last commits on power loss, never on a process crash; and a busy timeout, so that a second
 * connection to the file (a test, an operator's sqlite3) waits rather than fails.
 */
export function openSqlite<Tables>(path: string): Kysely<Tables> {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new Database(path);
  if (path !== ':memory:') database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  return new Kysely<Tables>({ dialect: new SqliteDialect({ database }) });
}

/**
 * A worker's file with the tables every worker keeps, created or brought up to date: the commands
 * it took (commands/inbox.ts) and the callbacks it owes the broker (callbacks/outbox.ts). Each
 * worker adds its own tables.
 */
export async function openWorkerStore<Tables extends CommandTables & OutboxTables>(
  path: string,
): Promise<Kysely<Tables>> {
  const db = openSqlite<Tables>(path);
  await migrateCommands(db);
  await migrateOutbox(db);
  return db;
}
