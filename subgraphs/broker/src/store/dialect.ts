import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Dialect as KyselyDialect,
  type Driver,
  type Kysely,
  type SqliteDatabase,
  type SqliteStatement,
} from 'kysely';
import pg from 'pg';

/**
 * Everything that differs between SQLite and PostgreSQL lives here, so that the rest of the broker
 * has one code path. Values behave the same in both:
 * - times are epoch milliseconds in `bigint` columns, read back as JS numbers (PostgreSQL's int8
 *   parser is replaced; epoch ms and row counts stay far below 2^53);
 * - JSON is text (`JSON.stringify` in, `JSON.parse` out) in both, so no driver parses it behind
 *   our back;
 * - columns declared `boolean` take and return JS booleans (SQLite stores 0/1; this adapter
 *   converts on the way in and, by declared column type, on the way out).
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Connection {
  dialect: Dialect;
  kysely: KyselyDialect;
  /** Subscribes to a notification channel; a no-op on SQLite, where one process is the only writer. */
  listen(channel: string, onNotify: () => void, onError: (error: Error) => void): () => Promise<void>;
}

/** `postgres://…` or `postgresql://…` is PostgreSQL; anything else a SQLite path. */
export function connect(url: string | undefined, poolSize: number): Connection {
  return url !== undefined && /^postgres(ql)?:\/\//.test(url)
    ? connectPostgres(url, poolSize)
    : connectSqlite(url ?? ':memory:');
}

function connectSqlite(path: string): Connection {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  if (path !== ':memory:') db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode loses at most the last commits on power loss, never on a process crash.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return {
    dialect: 'sqlite',
    kysely: new ImmediateSqliteDialect({ database: cachingDatabase(db) }),
    listen: () => async () => {},
  };
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query afresh; reusing prepared statements roughly halves the cost of the
 * small queries the job engine runs per job.
 */
function cachingDatabase(db: Database.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => db.close(),
    prepare(text) {
      let statement = cache.get(text);
      if (!statement) {
        statement = booleanStatement(db.prepare(text));
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

const bind = (parameters: ReadonlyArray<unknown>) =>
  parameters.map((value) => (typeof value === 'boolean' ? Number(value) : value));

function booleanStatement(statement: Database.Statement): SqliteStatement {
  const booleans = statement.reader
    ? statement
        .columns()
        .filter((column) => column.type?.toLowerCase() === 'boolean')
        .map((column) => column.name)
    : [];
  const decode = (row: unknown) => {
    const record = row as Record<string, unknown>;
    for (const name of booleans) if (record[name] !== null) record[name] = record[name] === 1;
    return record;
  };
  return {
    reader: statement.reader,
    all: (parameters) => {
      const rows = statement.all(bind(parameters));
      return booleans.length ? rows.map(decode) : rows;
    },
    run: (parameters) => statement.run(bind(parameters)),
    *iterate(parameters) {
      for (const row of statement.iterate(bind(parameters))) yield booleans.length ? decode(row) : row;
    },
  };
}

/**
 * `BEGIN IMMEDIATE` takes the write lock up front, so that a transaction that reads then writes
 * waits (busy_timeout) instead of failing with SQLITE_BUSY when another connection writes first.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

const INT8_OID = 20;

function connectPostgres(url: string, poolSize: number): Connection {
  const types = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === INT8_OID
        ? Number
        : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
  };
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
  // An idle connection that dies (server restart) is dropped by the pool and replaced on the next
  // query, which reports any lasting outage; unhandled, the event would end the process.
  pool.on('error', () => {});
  return {
    dialect: 'postgres',
    kysely: new PostgresDialect({ pool }),
    listen: (channel, onNotify, onError) => listenPostgres(url, channel, onNotify, onError),
  };
}

const RECONNECT_MS = 1000;

/**
 * One dedicated connection per subscription (pooled connections cannot hold a LISTEN). It
 * reconnects after a failure and then calls onNotify once, because notifications sent while it
 * was away are lost.
 */
function listenPostgres(
  url: string,
  channel: string,
  onNotify: () => void,
  onError: (error: Error) => void,
): () => Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const reconnect = (failed: pg.Client) => {
    if (closed || client !== failed) return;
    client = undefined;
    failed.end().catch(() => {});
    retry = setTimeout(open, RECONNECT_MS);
    retry.unref();
  };
  const open = () => {
    const current = new pg.Client({ connectionString: url });
    client = current;
    current.on('notification', (message) => {
      if (message.channel === channel) onNotify();
    });
    current.on('error', (error) => {
      onError(error);
      reconnect(current);
    });
    current.on('end', () => reconnect(current));
    current
      .connect()
      .then(() => current.query(`LISTEN ${channel}`))
      .then(() => (closed ? current.end() : onNotify()))
      .catch((error: Error) => {
        onError(error);
        reconnect(current);
      });
  };
  open();
  return async () => {
    closed = true;
    clearTimeout(retry);
    const current = client;
    client = undefined;
    await current?.end().catch(() => {});
  };
}

/** Makes new rows of `table` wake listeners of `channel` when the inserting transaction commits. */
export async function notifyOnInsert(db: Kysely<unknown>, dialect: Dialect, table: string, channel: string) {
  if (dialect !== 'postgres') return;
  // One notification per statement and, as PostgreSQL folds identical ones, per transaction.
  await sql
    .raw(
      `create function ${table}_notify() returns trigger language plpgsql as $$ ` +
        `begin perform pg_notify('${channel}', ''); return null; end $$`,
    )
    .execute(db);
  await sql
    .raw(
      `create trigger ${table}_notify after insert on ${table} for each statement execute function ${table}_notify()`,
    )
    .execute(db);
}

/** Locks the selected rows and skips rows other instances hold; SQLite's single writer needs neither. */
export function skipLocked<Q extends { forUpdate(): Q; skipLocked(): Q }>(query: Q, dialect: Dialect): Q {
  return dialect === 'postgres' ? query.forUpdate().skipLocked() : query;
}
