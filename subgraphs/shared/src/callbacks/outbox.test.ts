import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { CallbackOutbox, migrateOutbox, type OutboxTables } from './outbox.ts';
import { verify } from './signature.ts';

const SECRET = 'outbox-test-secret';
const log = pino({ level: 'silent' });

/** A broker stand-in: answers with `status(callback)`, and records what it took. */
async function fakeBroker(status: (callback: Ivoa.ComponentCallback) => number) {
  const taken: Ivoa.ComponentCallback[] = [];
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      if (!verify(SECRET, request.headers, body).ok) return void response.writeHead(401).end();
      const callback = JSON.parse(body) as Ivoa.ComponentCallback;
      const code = status(callback);
      if (code < 300) taken.push(callback);
      response.writeHead(code).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks`;
  return { url, taken, close: () => new Promise((done) => server.close(done)) };
}

const openDb = () =>
  new Kysely<OutboxTables>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(status: (callback: Ivoa.ComponentCallback) => number = () => 202) {
  const broker = await fakeBroker(status);
  const db = openDb();
  await migrateOutbox(db);
  const counts = { sent: 0, failed: 0 };
  const outbox = new CallbackOutbox({
    db,
    secret: SECRET,
    log,
    service: 'test',
    counters: { sent: () => counts.sent++, failed: () => counts.failed++ },
  });
  cleanups.push(
    broker.close,
    () => db.destroy(),
    () => outbox.close(),
  );
  return { broker, db, outbox, counts };
}

const fields = (component: string, phase: Ivoa.LifecyclePhase) => ({
  stepId: '00000000-0000-4000-8000-000000000001',
  componentUuid: component,
  phase,
});

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}

describe('the callback outbox', () => {
  it('delivers each component in sequence order while a refused component retries without blocking the others', async () => {
    let refusals = 3;
    const { broker, outbox, counts } = await setUp((callback) =>
      callback.componentUuid === 'slow' && refusals-- > 0 ? 503 : 202,
    );
    await outbox.enqueue(broker.url, fields('slow', 'PREPARING'));
    await outbox.enqueue(broker.url, fields('slow', 'AVAILABLE'));
    await outbox.enqueue(broker.url, fields('fast', 'PREPARING'));
    await outbox.enqueue(broker.url, fields('fast', 'AVAILABLE'));
    await until(
      'the fast component',
      () => broker.taken.filter((c) => c.componentUuid === 'fast').length === 2,
    );
    expect(broker.taken.some((c) => c.componentUuid === 'slow')).toBe(false);
    await until('everything', async () => (await outbox.pending()) === 0);
    const slow = broker.taken.filter((c) => c.componentUuid === 'slow');
    expect(slow.map((c) => c.phase)).toEqual(['PREPARING', 'AVAILABLE']);
    expect(slow[0]!.sequence).toBeLessThan(slow[1]!.sequence);
    expect(counts).toEqual({ sent: 4, failed: 3 });
  });

  it('keeps the last callback of each component, delivered or not, and answers it by component', async () => {
    let accept = true;
    const { broker, db, outbox } = await setUp(() => (accept ? 202 : 503));
    await outbox.enqueue(broker.url, fields('a', 'PREPARING'));
    await outbox.enqueue(broker.url, fields('a', 'AVAILABLE'));
    await outbox.enqueue(broker.url, fields('b', 'PREPARING'));
    await until('delivered', async () => (await outbox.pending()) === 0);
    accept = false;
    await outbox.enqueue(broker.url, fields('b', 'FAILED'));

    const latest = await outbox.latest(['a', 'b', 'unknown']);
    expect(latest.map((c) => [c.componentUuid, c.phase]).sort()).toEqual([
      ['a', 'AVAILABLE'],
      ['b', 'FAILED'],
    ]);
    // Older delivered callbacks are dropped: one delivered row for a, one delivered and one pending for b.
    const rows = await db.selectFrom('outbox').select(['component_uuid', 'delivered_at']).execute();
    expect(rows.filter((r) => r.component_uuid === 'a')).toHaveLength(1);
    expect(
      rows
        .filter((r) => r.component_uuid === 'b')
        .map((r) => r.delivered_at === null)
        .sort(),
    ).toEqual([false, true]);
    await expect(outbox.latest(Array.from({ length: 1001 }, (_, i) => String(i)))).rejects.toThrow(/1000/);
  });

  it('migrates a table from before delivered_at and traceparent, keeping its rows, and delivers them on resume', async () => {
    const broker = await fakeBroker(() => 202);
    const db = openDb();
    cleanups.push(broker.close, () => db.destroy());
    await sql`CREATE TABLE outbox (
      event_id TEXT PRIMARY KEY, component_uuid TEXT NOT NULL, sequence INTEGER NOT NULL, url TEXT NOT NULL,
      body TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL)`.execute(db);
    const old: Ivoa.ComponentCallback = {
      eventId: 'old-event',
      sequence: 5,
      at: new Date().toISOString(),
      ...fields('c', 'AVAILABLE'),
    };
    await sql`INSERT INTO outbox VALUES (${old.eventId}, 'c', 5, ${broker.url}, ${JSON.stringify(old)}, 2, 0)`.execute(
      db,
    );
    await migrateOutbox(db);
    await migrateOutbox(db);
    const outbox = new CallbackOutbox({
      db,
      secret: SECRET,
      log,
      service: 'test',
      counters: { sent: () => {}, failed: () => {} },
    });
    cleanups.push(() => outbox.close());
    expect(await outbox.pending()).toBe(1);
    await outbox.resume();
    await until('the old callback', () => broker.taken.length === 1);
    expect(broker.taken[0]).toEqual(old);
    expect(await outbox.latest(['c'])).toEqual([old]);
  });
});
