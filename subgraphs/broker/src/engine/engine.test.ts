import { afterEach, describe, expect, it } from 'vitest';
import { backoffMs } from '@srcnet/service-kit';
import { openStore, type Store } from '../store/index.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from '../store/scratch.ts';
import {
  applyEffect,
  effectCount,
  effectsMigrations,
  waitFor,
  type EffectsTables,
} from './fixtures/effects.ts';
import { cancel, deadJobs, enqueue, jobStats, type Engine, type EngineOptions } from './index.ts';
import { startEngine } from './runner.ts';
import { engineMigrations } from './tables.ts';

const pgUp = await postgresReachable();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !pgUp)(`job engine on ${dialect}`, () => {
    let scratch: ScratchDatabase | undefined;
    const stores: Store<EffectsTables>[] = [];
    const engines: Engine[] = [];

    /** A store on this test's database; a second call opens a second, independent connection. */
    const open = async () => {
      scratch ??= await scratchDatabase(dialect);
      const store = await openStore<EffectsTables>({
        url: scratch.url,
        migrations: [engineMigrations, effectsMigrations],
      });
      stores.push(store);
      return store;
    };
    const start = (options: EngineOptions<EffectsTables>) => {
      const engine = startEngine(options);
      engines.push(engine);
      return engine;
    };
    const job = (store: Store<EffectsTables>, key: string) =>
      store.db.selectFrom('jobs').selectAll().where('key', '=', key).executeTakeFirst();

    afterEach(async () => {
      for (const engine of engines.splice(0)) await engine.stop();
      for (const store of stores.splice(0)) await store.close();
      await scratch?.drop();
      scratch = undefined;
    });

    it('enqueues a key once, only when the transaction commits, and frees it on cancel', async () => {
      const store = await open();
      const runs: string[] = [];
      await store.transaction(async (tx) => {
        expect(await enqueue(tx, { kind: 'count', key: 'k1', payload: { first: true } })).toBe('enqueued');
        expect(await enqueue(tx, { kind: 'count', key: 'k1', payload: { first: false } })).toBe('duplicate');
      });
      expect(await store.transaction((tx) => enqueue(tx, { kind: 'count', key: 'k1', payload: {} }))).toBe(
        'duplicate',
      );
      await expect(
        store.transaction(async (tx) => {
          await enqueue(tx, { kind: 'count', key: 'rolled-back', payload: {} });
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(await job(store, 'rolled-back')).toBeUndefined();

      const engine = start({
        store,
        handlers: {
          count: {
            style: 'state',
            run: async (j) => void runs.push(`${j.key}:${JSON.stringify(j.payload)}`),
          },
        },
      });
      await engine.drain();
      expect(runs).toEqual(['k1:{"first":true}']);
      expect(await enqueue(store.db, { kind: 'count', key: 'k1', payload: {} })).toBe('duplicate');
      await engine.drain();
      expect(runs).toHaveLength(1);

      await enqueue(store.db, { kind: 'count', key: 'later', payload: 1, runAt: Date.now() + 60_000 });
      expect(await store.transaction((tx) => cancel(tx, 'later'))).toBe(true);
      expect(await cancel(store.db, 'later')).toBe(false);
      expect(await cancel(store.db, 'k1')).toBe(false);
      expect(await enqueue(store.db, { kind: 'count', key: 'later', payload: 2 })).toBe('enqueued');
      await engine.drain();
      expect(runs).toEqual(['k1:{"first":true}', 'later:2']);
    });

    it('fires timers at their time without waiting for the sweep, and never a cancelled one', async () => {
      const store = await open();
      const fired = new Map<string, number>();
      start({
        store,
        sweepMs: 60_000,
        handlers: { timer: { style: 'state', run: async (j) => void fired.set(j.key, Date.now()) } },
      });
      await sleep(50);
      const now = Date.now();
      const due = { soon: now + 150, later: now + 300, cancelled: now + 200 };
      for (const [key, runAt] of Object.entries(due))
        await enqueue(store.db, { kind: 'timer', key, payload: null, runAt });
      await store.transaction((tx) => cancel(tx, 'cancelled'));
      await sleep(600);
      expect([...fired.keys()].sort()).toEqual(['later', 'soon']);
      for (const key of ['soon', 'later'] as const) {
        expect(fired.get(key)).toBeGreaterThanOrEqual(due[key]);
        expect(fired.get(key)! - due[key]).toBeLessThan(150);
      }
    });

    it('rolls back a failing state handler alone, retries it, and runs after-commit hooks of the committed run only', async () => {
      const store = await open();
      const hooks: string[] = [];
      start({
        store,
        handlers: {
          flaky: {
            style: 'state',
            retry: { baseDelayMs: 10, maxDelayMs: 20 },
            run: async (j, tx, commit) => {
              await applyEffect(tx, j.key, 'flaky');
              commit.afterCommit(() => hooks.push(`${j.key}@${j.attempt}`));
              if (j.attempt < 3) throw new Error(`flaky failure ${j.attempt}`);
            },
          },
          steady: {
            style: 'state',
            run: async (j, tx, commit) => {
              await applyEffect(tx, j.key, 'steady');
              commit.afterCommit(() => hooks.push(`${j.key}@${j.attempt}`));
            },
          },
        },
      });
      await store.transaction(async (tx) => {
        await enqueue(tx, { kind: 'steady', key: 's1', payload: null });
        await enqueue(tx, { kind: 'flaky', key: 'f1', payload: null });
        await enqueue(tx, { kind: 'steady', key: 's2', payload: null });
      });
      await waitFor(async () => (await job(store, 'f1'))?.state === 'done');
      expect(await effectCount(store.db)).toEqual({ rows: 3, applied: 3 });
      expect(hooks.sort()).toEqual(['f1@3', 's1@1', 's2@1']);
      expect(await job(store, 'f1')).toMatchObject({ attempts: 3, last_error: null });
    });

    it('retries a failing delivery with growing jittered delays, then dead-letters it with its last error', async () => {
      const store = await open();
      const attempts: { attempt: number; at: number; key: string }[] = [];
      const retry = { attempts: 4, baseDelayMs: 40, maxDelayMs: 1000 };
      start({
        store,
        handlers: {
          send: {
            style: 'delivery',
            retry,
            run: async (j) => {
              attempts.push({ attempt: j.attempt, at: Date.now(), key: j.key });
              throw new Error(`refused ${j.attempt}`);
            },
          },
        },
      });
      await enqueue(store.db, { kind: 'send', key: 'cmd:1', payload: { to: 'worker' } });
      await waitFor(async () => (await deadJobs(store.db)).length === 1);
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
      expect(new Set(attempts.map((a) => a.key))).toEqual(new Set(['cmd:1']));
      for (let i = 1; i < attempts.length; i++) {
        const gap = attempts[i]!.at - attempts[i - 1]!.at;
        expect(gap).toBeGreaterThanOrEqual(backoffMs(i, retry, () => 0) - 2);
        expect(gap).toBeLessThan(backoffMs(i, retry, () => 1) + 150);
      }
      const [dead] = await deadJobs(store.db);
      expect(dead).toMatchObject({
        key: 'cmd:1',
        kind: 'send',
        payload: { to: 'worker' },
        attempts: 4,
        lastError: 'refused 4',
      });
      await sleep(300);
      expect(attempts).toHaveLength(4);
      expect(await jobStats(store.db)).toMatchObject({ dead: 1, due: 0, claimed: 0, scheduled: 0 });
    });

    it('lets another instance take over a delivery whose lease ran out, and ignores the late outcome', async () => {
      const first = await open();
      const second = dialect === 'postgres' ? await open() : first;
      let release!: () => void;
      const stuck = new Promise<void>((resolve) => (release = resolve));
      const seen: string[] = [];
      const a = start({
        store: first,
        instanceId: 'a',
        leaseMs: 300,
        handlers: {
          send: {
            style: 'delivery',
            run: async (j) => {
              seen.push(`a:${j.key}:${j.attempt}`);
              await stuck;
            },
          },
        },
      });
      await enqueue(first.db, { kind: 'send', key: 'cmd:lease', payload: null });
      await waitFor(() => seen.length === 1);
      expect(await jobStats(first.db)).toMatchObject({ claimed: 1, due: 0 });
      // Instance a "crashes": it claims nothing more, its handler hangs past the lease.
      const stopping = a.stop();
      start({
        store: second,
        instanceId: 'b',
        leaseMs: 300,
        handlers: {
          send: { style: 'delivery', run: async (j) => void seen.push(`b:${j.key}:${j.attempt}`) },
        },
      });
      await waitFor(async () => (await job(first, 'cmd:lease'))?.state === 'done', 3000);
      expect(seen).toEqual(['a:cmd:lease:1', 'b:cmd:lease:2']);
      release();
      await stopping;
      expect(await job(first, 'cmd:lease')).toMatchObject({ state: 'done', claimed_by: 'b', attempts: 2 });
    });

    it('dead-letters a job whose last allowed attempt never finished', async () => {
      const first = await open();
      const second = dialect === 'postgres' ? await open() : first;
      let release!: () => void;
      const stuck = new Promise<void>((resolve) => (release = resolve));
      const ran: number[] = [];
      const retry = { attempts: 1 };
      const a = start({
        store: first,
        leaseMs: 100,
        handlers: {
          send: {
            style: 'delivery',
            retry,
            run: async (j) => {
              ran.push(j.attempt);
              await stuck;
            },
          },
        },
      });
      await enqueue(first.db, { kind: 'send', key: 'cmd:hangs', payload: null });
      await waitFor(() => ran.length === 1);
      const stopping = a.stop();
      start({
        store: second,
        leaseMs: 100,
        handlers: { send: { style: 'delivery', retry, run: async (j) => void ran.push(j.attempt) } },
      });
      await waitFor(async () => (await deadJobs(first.db)).length === 1, 3000);
      expect(ran).toEqual([1]);
      expect((await deadJobs(first.db))[0]).toMatchObject({
        key: 'cmd:hangs',
        lastError: 'the last attempt never finished (lease expired)',
      });
      release();
      await stopping;
    });

    it('counts due, claimed, scheduled and dead jobs and the age of the oldest due one', async () => {
      const store = await open();
      const now = Date.now();
      await enqueue(store.db, { kind: 'idle', key: 'old', payload: null, runAt: now - 5000 });
      await enqueue(store.db, { kind: 'idle', key: 'new', payload: null, runAt: now - 10 });
      await enqueue(store.db, { kind: 'idle', key: 'timer', payload: null, runAt: now + 60_000 });
      let release!: () => void;
      const hang = new Promise<void>((resolve) => (release = resolve));
      const engine = start({
        store,
        handlers: {
          hang: { style: 'delivery', run: () => hang },
          fail: {
            style: 'delivery',
            retry: { attempts: 1 },
            run: async () => Promise.reject(new Error('no')),
          },
        },
      });
      await enqueue(store.db, { kind: 'hang', key: 'h', payload: null });
      await enqueue(store.db, { kind: 'fail', key: 'f', payload: null });
      await waitFor(
        async () => (await jobStats(store.db)).dead === 1 && (await jobStats(store.db)).claimed === 1,
      );
      const stats = await jobStats(store.db, now);
      expect(stats).toMatchObject({ due: 2, claimed: 1, scheduled: 1, dead: 1 });
      expect(engine.running).toBe(1);
      expect(stats.oldestDueMs).toBe(5000);
      release();
    });

    if (dialect === 'postgres') {
      it('wakes an idle instance through NOTIFY when another connection enqueues', async () => {
        const producer = await open();
        const consumer = await open();
        const done: number[] = [];
        const engine = start({
          store: consumer,
          sweepMs: 60_000,
          handlers: { ping: { style: 'state', run: async () => void done.push(Date.now()) } },
        });
        await engine.drain();
        await sleep(200);
        const sent = Date.now();
        await producer.transaction((tx) => enqueue(tx, { kind: 'ping', key: 'p1', payload: null }));
        await waitFor(() => done.length === 1, 2000);
        expect(done[0]! - sent).toBeLessThan(500);
      });
    }
  });
}
