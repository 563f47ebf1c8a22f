import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Dialect } from './dialect.ts';

/** Throwaway databases for tests and measurements. */

/** The server on which scratch PostgreSQL databases are created. */
export const POSTGRES_ADMIN_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

/**
 * Whether PostgreSQL tests can run. Outside CI an unreachable server skips them with a warning;
 * in CI (`CI=true`) it is an error, so that they cannot be skipped silently.
 */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.end();
      return true;
    } catch (error) {
      const message = `PostgreSQL at ${POSTGRES_ADMIN_URL} is unreachable (${(error as Error).message})`;
      if (process.env.CI === 'true') throw new Error(`${message}; CI requires it`, { cause: error });
      console.warn(`${message}: PostgreSQL tests are SKIPPED`);
      return false;
    }
  })();
  return reachable;
}

export interface ScratchDatabase {
  url: string;
  /** Deletes the database; call after closing every store on it. */
  drop(): Promise<void>;
}

/** A new, empty database: a SQLite file in a temporary folder, or a randomly named PostgreSQL database. */
export async function scratchDatabase(dialect: Dialect): Promise<ScratchDatabase> {
  if (dialect === 'sqlite') {
    const folder = mkdtempSync(join(tmpdir(), 'broker-store-'));
    return {
      url: join(folder, 'broker.sqlite'),
      drop: async () => rmSync(folder, { recursive: true, force: true }),
    };
  }
  const name = `broker_test_${randomBytes(6).toString('hex')}`;
  await admin(`create database ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
