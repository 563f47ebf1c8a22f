import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceAvailable, TEST_DATABASE_URL } from '@srcnet/service-kit/testing';
import { CONTAINER_PHASES, containerStep, phasesOf, testBroker, waitFor } from './harness.ts';

/**
 * Two broker instances on one PostgreSQL database share the work: every step completes, and
 * no job is done twice (each worker command reaches a worker once; each step's history has each
 * transition once).
 */
const available = await serviceAvailable('PostgreSQL');
const name = `broker_test_${randomUUID().replace(/-/g, '')}`;
const url = new URL(TEST_DATABASE_URL);
url.pathname = `/${name}`;

beforeAll(async () => {
  if (!available) return;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
});
afterAll(async () => {
  if (!available) return;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
});

const STEPS = 500;
const step = containerStep('PT5M');

describe.skipIf(!available)('two brokers on one PostgreSQL', () => {
  it(`share ${STEPS} steps, and every event is processed exactly once`, async () => {
    const env = { DATABASE_URL: url.toString(), SITE_CORES: '100000', SITE_MEMORY_GIB: '100000' };
    const a = await testBroker(env);
    const b = await testBroker(env);
    try {
      const ids: string[] = [];
      const post = async (target: string) => {
        const response = await fetch(`${target}/direct`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(step),
        });
        if (response.status !== 303)
          throw new Error(`direct answered ${response.status}: ${await response.text()}`);
        ids.push((await response.json()).meta.uuid);
      };
      for (let i = 0; i < STEPS; i += 20) {
        await Promise.all(Array.from({ length: 20 }, (_, j) => post((i + j) % 2 ? a.url : b.url)));
      }
      await waitFor(
        'every step to complete',
        async () => {
          const { rows } = await a.store.db
            .selectFrom('steps')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('phase', '=', 'COMPLETED')
            .execute()
            .then((r) => ({ rows: r }));
          if (process.env.DEBUG_PG) console.log(rows[0]);
          return Number(rows[0]!.n) === STEPS ? true : undefined;
        },
        120_000,
      );
      const stats = [a.simulation.stats(), b.simulation.stats()];
      // Each step: prepare the executable, prepare the compute, release the executable.
      expect(stats[0]!.effective + stats[1]!.effective).toBe(STEPS * 3);
      expect(stats[0]!.received + stats[1]!.received).toBe(STEPS * 3);
      // Both instances took part.
      expect(Math.min(stats[0]!.effective, stats[1]!.effective)).toBeGreaterThan(0);
      const history = await a.broker.history(ids);
      for (const id of ids) {
        expect(phasesOf(history.get(id)!)).toEqual(CONTAINER_PHASES);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 180_000);
});
