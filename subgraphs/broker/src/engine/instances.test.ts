import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../store/index.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from '../store/scratch.ts';
import {
  applyEffect,
  effectCount,
  effectsMigrations,
  waitFor,
  type EffectsTables,
} from './fixtures/effects.ts';
import { enqueue, jobStats, startEngine, type Engine } from './index.ts';
import { engineMigrations } from './tables.ts';

const pgUp = await postgresReachable();
const JOBS = 2000;

describe.skipIf(!pgUp)('two engine instances on one PostgreSQL database', () => {
  let scratch: ScratchDatabase;
  const stores: Store<EffectsTables>[] = [];
  const engines: Engine[] = [];

  beforeAll(async () => {
    scratch = await scratchDatabase('postgres');
  });
  afterAll(async () => {
    for (const engine of engines) await engine.stop();
    for (const store of stores) await store.close();
    await scratch?.drop();
  });

  it(`process ${JOBS} state and ${JOBS} delivery jobs, each exactly once`, async () => {
    const open = async () => {
      const store = await openStore<EffectsTables>({
        url: scratch.url,
        migrations: [engineMigrations, effectsMigrations],
      });
      stores.push(store);
      return store;
    };
    const [producer, first, second] = [await open(), await open(), await open()];
    const deliveries = new Map<string, number>();
    for (const [store, instanceId] of [
      [first, 'a'],
      [second, 'b'],
    ] as const) {
      engines.push(
        startEngine({
          store,
          instanceId,
          batchSize: 50,
          concurrency: 16,
          handlers: {
            effect: { style: 'state', run: async (job, tx) => applyEffect(tx, job.key, instanceId) },
            notify: {
              style: 'delivery',
              run: async (job) => {
                deliveries.set(job.key, (deliveries.get(job.key) ?? 0) + 1);
                await new Promise((resolve) => setImmediate(resolve));
              },
            },
          },
        }),
      );
    }
    // Many small producer transactions, as client requests would make them.
    for (let i = 0; i < JOBS; i += 20) {
      await producer.transaction(async (tx) => {
        for (let j = i; j < i + 20; j++) {
          await enqueue(tx, { kind: 'effect', key: `effect:${j}`, payload: { j } });
          await enqueue(tx, { kind: 'notify', key: `notify:${j}`, payload: { j } });
        }
      });
    }
    await waitFor(async () => {
      const stats = await jobStats(producer.db);
      return stats.due + stats.claimed + stats.scheduled === 0;
    }, 25_000);

    expect(await effectCount(producer.db)).toEqual({ rows: JOBS, applied: JOBS });
    expect(deliveries.size).toBe(JOBS);
    expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
    const byInstance = await producer.db
      .selectFrom('jobs')
      .select(['claimed_by', (eb) => eb.fn.countAll<number>().as('jobs')])
      .where('state', '=', 'done')
      .groupBy('claimed_by')
      .orderBy('claimed_by')
      .execute();
    expect(byInstance.map((row) => row.claimed_by)).toEqual(['a', 'b']);
    expect(byInstance.reduce((sum, row) => sum + row.jobs, 0)).toBe(2 * JOBS);
    expect((await jobStats(producer.db)).dead).toBe(0);
  });
});
