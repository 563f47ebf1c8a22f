import { randomUUID } from 'node:crypto';
import type { Database } from '../database/database.ts';
import { JOBS_CHANNEL, type JobTables } from './queue.ts';

/**
 * Runs due jobs. There is no loop per step and no busy polling: one timer is armed for the
 * earliest due job, an enqueue in this process wakes it after commit, other PostgreSQL instances
 * wake through NOTIFY, and a slow sweep catches lost notifications and expired leases.
 *
 * A job is claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two instances never
 * claim the same row), run, and deleted when its handler succeeds. A failure puts it back with
 * exponential backoff; after `maxAttempts` it is kept as dead, with its last error. A lease that
 * runs out (its instance died) makes the job claimable again: delivery is at least once, and
 * handlers are idempotent by the job key.
 */

export interface Job {
  key: string;
  kind: string;
  payload: unknown;
  attempts: number;
}

export type JobHandler = (job: Job) => Promise<void>;

export interface RunnerOptions {
  database: Database<JobTables>;
  handlers: Record<string, JobHandler>;
  instanceId?: string;
  batchSize?: number;
  concurrency?: number;
  leaseMs?: number;
  maxAttempts?: number;
  sweepMs?: number;
  onError?: (job: Job, error: unknown) => void;
}

export interface Runner {
  /** Looks for due jobs now (call after committing a transaction that queued some). */
  wake(): void;
  /** Resolves when nothing is due and nothing is running. */
  drain(): Promise<void>;
  stop(): Promise<void>;
  stats(): Promise<{
    due: number;
    leased: number;
    dead: number;
    oldestDueMs: number | null;
    inFlight: number;
  }>;
}

export async function startRunner(options: RunnerOptions): Promise<Runner> {
  const { database } = options;
  const db = database.db;
  const me = options.instanceId ?? randomUUID();
  const batchSize = options.batchSize ?? 200;
  const concurrency = options.concurrency ?? 64;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxAttempts = options.maxAttempts ?? 20;
  const sweepMs = options.sweepMs ?? 5_000;

  if (database.dialect === 'sqlite') {
    // SQLite serves one broker process; a lease left in it belongs to a process that died.
    await db
      .updateTable('jobs')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', 'is not', null)
      .execute();
  }

  let inFlight = 0;
  let ticking = false;
  let again = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let done: string[] = [];
  let flushing: Promise<void> | undefined;
  let idleWaiters: (() => void)[] = [];

  const flush = async () => {
    while (done.length) {
      const keys = done;
      done = [];
      await db.deleteFrom('jobs').where('key', 'in', keys).where('lease_owner', '=', me).execute();
    }
  };
  const scheduleFlush = () => {
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flush).finally(() => {
      flushing = undefined;
      if (done.length) scheduleFlush();
    });
  };

  const claim = async (limit: number): Promise<Job[]> => {
    const now = Date.now();
    let due = db
      .selectFrom('jobs')
      .select('key')
      .where('dead', '=', 0)
      .where('run_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('run_at')
      .limit(limit);
    if (database.dialect === 'postgres') due = due.forUpdate().skipLocked();
    const rows = await db
      .updateTable('jobs')
      .set((eb) => ({ lease_owner: me, lease_until: now + leaseMs, attempts: eb('attempts', '+', 1) }))
      .where('key', 'in', due)
      .returning(['key', 'kind', 'payload', 'attempts'])
      .execute();
    return rows.map((row) => ({
      key: row.key,
      kind: row.kind,
      payload: JSON.parse(row.payload),
      attempts: row.attempts,
    }));
  };

  const fail = async (job: Job, error: unknown) => {
    options.onError?.(job, error);
    const dead = job.attempts >= maxAttempts;
    const backoff = Math.min(60_000, 100 * 2 ** Math.min(job.attempts, 10)) * (0.5 + Math.random() / 2);
    await db
      .updateTable('jobs')
      .set({
        lease_owner: null,
        lease_until: null,
        dead: dead ? 1 : 0,
        run_at: Date.now() + Math.round(backoff),
        last_error: String((error as Error)?.message ?? error).slice(0, 2000),
      })
      .where('key', '=', job.key)
      .where('lease_owner', '=', me)
      .execute();
  };

  const run = async (job: Job) => {
    const handler = options.handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for jobs of kind ${job.kind}`);
      await handler(job);
      done.push(job.key);
      scheduleFlush();
    } catch (error) {
      await fail(job, error).catch(() => {});
    } finally {
      inFlight--;
      wake();
    }
  };

  const arm = async () => {
    const now = Date.now();
    const next = await db
      .selectFrom('jobs')
      .select((eb) => eb.fn.min(eb.fn.coalesce('lease_until', 'run_at')).as('next'))
      .where('dead', '=', 0)
      .executeTakeFirst();
    const at =
      next?.next === null || next?.next === undefined
        ? now + sweepMs
        : Math.min(Number(next.next), now + sweepMs);
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(wake, Math.max(0, at - now + 1));
  };

  const tick = async () => {
    if (ticking) {
      again = true;
      return;
    }
    ticking = true;
    try {
      do {
        again = false;
        while (!stopped && inFlight < concurrency) {
          const jobs = await claim(Math.min(batchSize, concurrency - inFlight));
          if (jobs.length === 0) break;
          inFlight += jobs.length;
          for (const job of jobs) void run(job);
          await new Promise((resolve) => setImmediate(resolve));
        }
      } while (again && !stopped);
      if (!stopped) await arm();
    } finally {
      ticking = false;
    }
    if (inFlight === 0 && !again) {
      await flushing;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  function wake() {
    if (!stopped)
      tick().catch((error) =>
        options.onError?.({ key: '', kind: 'runner', payload: null, attempts: 0 }, error),
      );
  }

  const unlisten = await database.listen(JOBS_CHANNEL, wake);
  wake();

  return {
    wake,
    async drain() {
      for (;;) {
        await new Promise<void>((resolve) => {
          idleWaiters.push(resolve);
          wake();
        });
        const due = await db
          .selectFrom('jobs')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('dead', '=', 0)
          .where('run_at', '<=', Date.now())
          .executeTakeFirst();
        if (Number(due?.n ?? 0) === 0 && inFlight === 0) return;
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await unlisten();
      while (inFlight > 0 || ticking) await new Promise((resolve) => setTimeout(resolve, 10));
      await flush();
    },
    async stats() {
      const now = Date.now();
      const rows = await db
        .selectFrom('jobs')
        .select((eb) => [
          eb.fn
            .countAll<number>()
            .filterWhere((w) =>
              w.and([w('dead', '=', 0), w('run_at', '<=', now), w('lease_owner', 'is', null)]),
            )
            .as('due'),
          eb.fn.countAll<number>().filterWhere('lease_owner', 'is not', null).as('leased'),
          eb.fn.countAll<number>().filterWhere('dead', '=', 1).as('dead'),
          eb.fn
            .min('run_at')
            .filterWhere((w) =>
              w.and([w('dead', '=', 0), w('run_at', '<=', now), w('lease_owner', 'is', null)]),
            )
            .as('oldest'),
        ])
        .executeTakeFirst();
      return {
        due: Number(rows?.due ?? 0),
        leased: Number(rows?.leased ?? 0),
        dead: Number(rows?.dead ?? 0),
        oldestDueMs: rows?.oldest === null || rows?.oldest === undefined ? null : now - Number(rows.oldest),
        inFlight,
      };
    },
  };
}
