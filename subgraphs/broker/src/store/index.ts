import { Kysely, Migrator, sql, type Migration, type Transaction } from 'kysely';
import { connect, type Dialect } from './dialect.ts';
import { groupCommits } from './group-commit.ts';

export type { Dialect } from './dialect.ts';

/**
 * A versioned schema change. Kysely's own `Migration` fits; the dialect is passed for the rare
 * change that must differ (see dialect.ts).
 */
export interface StoreMigration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
  down?(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

/**
 * Migrations by name. Names are applied in sorted order and recorded, so a name is a version:
 * the engine owns `000`–`099`; every later migration needs a name that sorts after all applied ones.
 */
export type Migrations = Record<string, StoreMigration>;

export interface StoreOptions {
  /** `postgres://…` for PostgreSQL; otherwise a SQLite file path, or `:memory:` (the default). */
  url?: string;
  /** Sets of migrations, e.g. `[engineMigrations, domainMigrations]`; a name may appear only once. */
  migrations?: Migrations[];
  /** PostgreSQL connections in the pool (default 10). */
  poolSize?: number;
}

export interface Store<DB> {
  readonly db: Kysely<DB>;
  readonly dialect: Dialect;
  /** Names of the migrations this open applied (empty when the schema was already current). */
  readonly migrated: string[];
  /**
   * Runs fn in a transaction. On SQLite the transactions asked for together share one commit,
   * each in a savepoint of its own (see group-commit.ts); a result means its commit is done.
   */
  transaction<T>(fn: (tx: Transaction<DB>) => Promise<T>): Promise<T>;
  /** Fails when the database cannot answer (readiness checks). */
  ping(): Promise<void>;
  /** Calls onNotify for each notification on `channel` (PostgreSQL; nothing to hear on SQLite). */
  listen(channel: string, onNotify: () => void, onError: (error: Error) => void): () => Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens SQLite or PostgreSQL and brings the schema up to date. Several broker instances need
 * PostgreSQL: on SQLite, one process is the writer.
 */
export async function openStore<DB>(options: StoreOptions = {}): Promise<Store<DB>> {
  const connection = connect(options.url, options.poolSize ?? 10);
  const { dialect } = connection;
  const db = new Kysely<DB>({ dialect: connection.kysely });
  const listeners = new Set<() => Promise<void>>();
  let migrated: string[];
  try {
    migrated = await migrate(db as Kysely<unknown>, dialect, options.migrations ?? []);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return {
    db,
    dialect,
    migrated,
    transaction: dialect === 'sqlite' ? groupCommits(db) : (fn) => db.transaction().execute(fn),
    async ping() {
      await sql`select 1`.execute(db);
    },
    listen(channel, onNotify, onError) {
      const stop = connection.listen(channel, onNotify, onError);
      listeners.add(stop);
      return async () => {
        listeners.delete(stop);
        await stop();
      };
    },
    async close() {
      await Promise.all([...listeners].map((stop) => stop()));
      await db.destroy();
    },
  };
}

async function migrate(db: Kysely<unknown>, dialect: Dialect, sets: Migrations[]): Promise<string[]> {
  const all: Record<string, Migration> = {};
  for (const set of sets) {
    for (const [name, migration] of Object.entries(set)) {
      if (name in all) throw new Error(`two migrations are named ${name}`);
      const { down } = migration;
      all[name] = {
        up: (target) => migration.up(target, dialect),
        ...(down && { down: (target: Kysely<unknown>) => down.call(migration, target, dialect) }),
      };
    }
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => all } });
  const { error, results = [] } = await migrator.migrateToLatest();
  const failed = results.find((result) => result.status === 'Error');
  if (error) {
    throw new Error(
      `migration ${failed?.migrationName ?? '(none)'} failed: ${(error as Error).message ?? error}`,
      {
        cause: error,
      },
    );
  }
  return results.filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
