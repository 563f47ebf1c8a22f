import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration } from 'kysely';
import pg from 'pg';

/**
 * The broker's database: SQLite (better-sqlite3) by default, PostgreSQL when the URL says so,
 * behind one Kysely code path. Times are epoch milliseconds (bigint in PostgreSQL, read back as
 * numbers) and documents JSON text, so the two behave alike.
 */

export type Dialect = 'sqlite' | 'postgres';

export interface Database<T> {
  db: Kysely<T>;
  dialect: Dialect;
  transaction<R>(fn: (tx: Kysely<T>) => Promise<R>): Promise<R>;
  /** Calls `onNotify` when another process commits a NOTIFY on `channel` (PostgreSQL only). */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// int8 (bigint) comes back from node-postgres as a string; every one of ours fits in a double.
pg.types.setTypeParser(20, (value) => Number(value));

export async function openDatabase<T>(
  url: string,
  migrations: Record<string, Migration>,
): Promise<Database<T>> {
  let db: Kysely<T>;
  let dialect: Dialect;
  let pool: pg.Pool | undefined;
  if (/^postgres(ql)?:\/\//.test(url)) {
    pool = new pg.Pool({ connectionString: url, max: 10 });
    db = new Kysely<T>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  } else {
    const sqlite = new Database(url);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    db = new Kysely<T>({ dialect: new SqliteDialect({ database: sqlite }) });
    dialect = 'sqlite';
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    throw new Error(`migration ${failed ?? '?'} failed: ${(error as Error).message}`);
  }
  return {
    db,
    dialect,
    transaction: (fn) => db.transaction().execute(fn),
    async listen(channel, onNotify) {
      if (!pool) return async () => {};
      const client = await pool.connect();
      client.on('notification', (message) => message.channel === channel && onNotify());
      await client.query(`LISTEN ${channel}`);
      return async () => {
        await client.query(`UNLISTEN ${channel}`).catch(() => {});
        client.release();
      };
    },
    async ping() {
      await db.selectNoFrom((eb) => eb.val(1).as('one')).execute();
    },
    close: () => db.destroy(),
  };
}
