import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { backoffMs, contextFrom, inSpan, SpanKind, type RetryPolicy } from '@srcnet/service-kit';
import { skipLocked } from '../store/dialect.ts';
import type { Store } from '../store/index.ts';
import { prepared } from '../store/prepared.ts';
import { onLocalEnqueue } from './queue.ts';
import { DONE, JOBS_CHANNEL, QUEUED, type EngineTables, type JobsTable } from './tables.ts';

/** A job as its handler sees it. */
export interface Job {
  /** The idempotency key: receivers of a delivery deduplicate by it. */
  key: string;
  kind: string;
  payload: unknown;
  /** 1 on the first run. */
  attempt: number;
  createdAt: number;
}

/** Runs (`attempts`) before the job is dead-lettered, and the backoff between them. */
const DEFAULT_RETRY: RetryPolicy = { attempts: 12, baseDelayMs: 1000, maxDelayMs: 600_000 };

export interface CommitHooks {
  /** Runs fn once the job's transaction has committed (e.g. to publish a change); dropped on rollback. */
  afterCommit(fn: () => void): void;
}

/**
 * Changes state exactly once: runs inside the transaction that marks the job done, so its effects
 * and the job's completion commit together or not at all. It must act only through `tx` (it may
 * run again after a rollback, including one caused by another job of its batch).
 */
export interface StateHandler<DB> {
  style: 'state';
  run(job: Job, tx: Transaction<DB>, hooks: CommitHooks): Promise<void>;
  retry?: Partial<RetryPolicy>;
}

/**
 * Talks to the outside world at least once (the outbox): runs outside any transaction; success
 * marks the job done, failure retries it with backoff. It must finish well within the lease,
 * after which another instance may run the job again.
 */
export interface DeliveryHandler {
  style: 'delivery';
  run(job: Job): Promise<void>;
  retry?: Partial<RetryPolicy>;
}

export type Handler<DB> = StateHandler<DB> | DeliveryHandler;

/** The subset of pino the engine uses. */
export interface EngineLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EngineOptions<DB extends EngineTables> {
  store: Store<DB>;
  /** By job kind. */
  handlers: Record<string, Handler<DB>>;
  /** Names this instance in claims (default host:pid:random). */
  instanceId?: string;
  /** Jobs claimed per statement; the state jobs of a claim run in one transaction (default 100). */
  batchSize?: number;
  /** Delivery handlers running at once (default 32). */
  concurrency?: number;
  /** State batches running at once, each on its own connection: PostgreSQL only (default 4); SQLite has one writer. */
  stateConcurrency?: number;
  /** How long a claimed job may take before another instance may take it over (default 60 s). */
  leaseMs?: number;
  /** Longest sleep: a safety net for lost notifications and for other instances' expired leases (default 5 s). */
  sweepMs?: number;
  /** How long done jobs are kept so that a repeated key stays a duplicate (default 7 days). */
  retentionMs?: number;
  logger?: EngineLogger;
  /**
   * Look for due jobs at this fixed interval instead of waking on events: how the reference
   * broker's processing loop works (every 1 s). Only for measuring against (bench/broker-throughput).
   */
  pollEveryMs?: number;
}

export interface Engine {
  readonly instanceId: string;
  /** Jobs running in this instance now (for metrics; the queue's own counts come from jobStats). */
  readonly running: number;
  /** Looks for due work now (normally not needed: enqueues, notifications and timers wake it). */
  wake(): void;
  /** Resolves once no job is due and none is running here (tests, benchmarks, shutdown). */
  drain(): Promise<void>;
  /** Stops claiming, waits for running handlers and records their outcomes. */
  stop(): Promise<void>;
}

/**
 * Starts the runner. Idle, it sleeps until the earliest due job, a local enqueue, a PostgreSQL
 * notification or the sweep; busy, it works in batches and yields to the event loop between them.
 */
export function startEngine<DB extends EngineTables>(options: EngineOptions<DB>): Engine {
  return new Runner(options);
}

type Row = Selectable<JobsTable>;
interface Outcome {
  row: Row;
  error?: unknown;
}

/** A state handler threw: its batch is rolled back and its jobs run one by one. */
class HandlerFailed extends Error {
  constructor(readonly error: unknown) {
    super('state handler failed');
  }
}

/** When due rows exist that another PostgreSQL instance holds, look again this soon rather than spin. */
const LOCKED_RETRY_MS = 10;
const ERROR_RETRY_MS = 1000;
const IN_LIST_CHUNK = 500;

const silent: EngineLogger = { warn() {}, error() {} };

/**
 * Every job is first claimed with a lease (claimed_by, lease_until, run_at = lease end, attempts
 * + 1) by one statement per kind, oldest first, skipping rows other instances are claiming. Then a
 * state batch runs in one transaction that marks each job done, fenced by the claim, so a job
 * whose lease was taken over is skipped; a delivery runs on its own and its outcome is written
 * later, in bulk, under the same fence. A lease that runs out (crash, hang) makes the job due again.
 */
class Runner<DB extends EngineTables> implements Engine {
  readonly instanceId: string;
  private readonly db: Kysely<EngineTables>;
  private readonly handlers: Record<string, Handler<DB>>;
  private readonly stateKinds: string[];
  private readonly deliveryKinds: string[];
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly stateConcurrency: number;
  private readonly leaseMs: number;
  private readonly sweepMs: number;
  private readonly retentionMs: number;
  private readonly logger: EngineLogger;
  private readonly unsubscribe: (() => unknown)[] = [];

  private timer: NodeJS.Timeout | undefined;
  private looping = false;
  private again = false;
  private stopped = false;
  private lastPurge = 0;
  private turn = 0;
  private stateBatches = 0;
  private stateJobs = 0;
  /** Deliveries running here, by key. */
  private readonly delivering = new Set<string>();
  /** Finished deliveries whose outcome is not yet written. */
  private outcomes: Outcome[] = [];
  private drainers: (() => void)[] = [];
  private quietWaiters: (() => void)[] = [];

  constructor(private readonly options: EngineOptions<DB>) {
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.db = options.store.db as unknown as Kysely<EngineTables>;
    this.handlers = options.handlers;
    const kinds = Object.entries(options.handlers);
    this.stateKinds = kinds.filter(([, handler]) => handler.style === 'state').map(([kind]) => kind);
    this.deliveryKinds = kinds.filter(([, handler]) => handler.style === 'delivery').map(([kind]) => kind);
    this.batchSize = Math.max(1, options.batchSize ?? 100);
    this.concurrency = Math.max(1, options.concurrency ?? 32);
    const postgres = options.store.dialect === 'postgres';
    this.stateConcurrency = postgres ? Math.max(1, options.stateConcurrency ?? 4) : 1;
    this.leaseMs = options.leaseMs ?? 60_000;
    this.sweepMs = options.sweepMs ?? 5_000;
    this.retentionMs = options.retentionMs ?? 7 * 24 * 3_600_000;
    this.logger = options.logger ?? silent;
    if (options.pollEveryMs) {
      // Polling: nothing wakes the runner but its own timer.
    } else if (postgres) {
      // NOTIFY arrives after commit and reaches every instance, this one included.
      this.unsubscribe.push(
        options.store.listen(
          JOBS_CHANNEL,
          () => this.wake(),
          (error) => this.logger.warn({ err: error }, 'job notifications interrupted; sweeping meanwhile'),
        ),
      );
    } else {
      this.unsubscribe.push(onLocalEnqueue(() => this.wake()));
    }
    this.wake();
  }

  get running(): number {
    return this.stateJobs + this.delivering.size;
  }

  wake(): void {
    if (this.stopped) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = true;
    setImmediate(() => void this.loop());
  }

  drain(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainers.push(resolve);
      this.wake();
    });
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      clearTimeout(this.timer);
      await Promise.all(this.unsubscribe.map((unsubscribe) => unsubscribe()));
    }
    await new Promise<void>((resolve) => {
      this.quietWaiters.push(resolve);
      this.checkQuiet();
    });
    await this.flushOutcomes();
    for (const resolve of this.drainers.splice(0)) resolve();
  }

  private busy(): boolean {
    return this.looping || this.stateBatches > 0 || this.delivering.size > 0;
  }

  private checkQuiet() {
    if (this.busy()) return;
    for (const resolve of this.quietWaiters.splice(0)) resolve();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.again = false;
        await this.flushOutcomes();
        if (this.stopped) break;
        const state = await this.claimStateBatch();
        const delivery = await this.claimDeliveries();
        await this.purge();
        if (state.full || delivery.full || this.again) {
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const next = await this.nextDue();
        if (this.again) continue;
        if (this.stopped) break;
        this.arm(next);
        const idle = this.stateBatches === 0 && this.delivering.size === 0 && this.outcomes.length === 0;
        if (idle && (next === undefined || next > Date.now())) {
          for (const resolve of this.drainers.splice(0)) resolve();
        }
        break;
      }
    } catch (error) {
      this.logger.error({ err: error }, 'job engine could not reach the database; retrying');
      if (!this.stopped) this.arm(Date.now() + ERROR_RETRY_MS);
    } finally {
      this.looping = false;
      this.checkQuiet();
    }
  }

  private arm(next: number | undefined) {
    clearTimeout(this.timer);
    const delay = this.options.pollEveryMs
      ? this.options.pollEveryMs
      : next === undefined
        ? this.sweepMs
        : Math.min(this.sweepMs, Math.max(LOCKED_RETRY_MS, next - Date.now()));
    this.timer = setTimeout(() => this.wake(), delay);
    // The engine serves the process; it is no reason for the process to stay alive.
    this.timer.unref();
  }

  /** The earliest due time among the jobs this instance has room for now: one indexed probe per kind. */
  private async nextDue(): Promise<number | undefined> {
    const kinds = [
      ...(this.stateBatches < this.stateConcurrency ? this.stateKinds : []),
      ...(this.delivering.size < this.concurrency ? this.deliveryKinds : []),
    ];
    if (kinds.length === 0) return undefined;
    const row = await this.db
      .selectNoFrom((eb) =>
        kinds.map((kind, i) =>
          eb
            .selectFrom('jobs')
            .select((inner) => inner.fn.min('run_at').as('next'))
            .where('state', '=', QUEUED)
            .where('kind', '=', kind)
            .as(`k${i}`),
        ),
      )
      .executeTakeFirstOrThrow();
    const times = Object.values(row as Record<string, number | null>).filter((time) => time !== null);
    return times.length ? Math.min(...times.map(Number)) : undefined;
  }

  /** Leases up to `limit` due jobs of the given kinds, kind by kind, starting one kind further each time. */
  private async claim(kinds: string[], limit: number): Promise<Row[]> {
    const now = Date.now();
    const leaseUntil = now + this.leaseMs;
    const start = this.turn++ % kinds.length;
    const rows: Row[] = [];
    for (const kind of [...kinds.slice(start), ...kinds.slice(0, start)]) {
      if (rows.length === limit) break;
      const due = skipLocked(
        this.db
          .selectFrom('jobs')
          .select('key')
          .where('state', '=', QUEUED)
          .where('kind', '=', kind)
          .where('run_at', '<=', now)
          .orderBy('run_at')
          .limit(limit - rows.length),
        this.options.store.dialect,
      );
      rows.push(
        ...(await this.db
          .updateTable('jobs')
          .set((eb) => ({
            attempts: eb('attempts', '+', 1),
            claimed_by: this.instanceId,
            lease_until: leaseUntil,
            run_at: leaseUntil,
          }))
          .where('key', 'in', due)
          .returningAll()
          .execute()),
      );
    }
    const live: Row[] = [];
    for (const row of rows.sort((a, b) => a.created_at - b.created_at)) {
      // The last allowed attempt never reported back (its lease ran out): the job may be what
      // crashes or hangs its runners, so it stops here.
      if (row.attempts > this.retryOf(row).attempts) {
        await this.recordFailure(this.db, row, 'the last attempt never finished (lease expired)');
      } else live.push(row);
    }
    return live;
  }

  private retryOf(row: Row): RetryPolicy {
    return { ...DEFAULT_RETRY, ...this.handlers[row.kind]?.retry };
  }

  private async claimStateBatch(): Promise<{ full: boolean }> {
    if (this.stateKinds.length === 0 || this.stateBatches >= this.stateConcurrency) return { full: false };
    const rows = await this.claim(this.stateKinds, this.batchSize);
    if (rows.length > 0) {
      this.stateBatches++;
      this.stateJobs += rows.length;
      void this.runStateBatch(rows).finally(() => {
        this.stateBatches--;
        this.stateJobs -= rows.length;
        this.wake();
        this.checkQuiet();
      });
    }
    return { full: rows.length === this.batchSize };
  }

  /**
   * Runs the batch in one transaction. If a handler throws, the whole batch rolls back and each
   * job runs in a transaction of its own, so that only the failing one fails: a failure costs a
   * second pass, success costs no savepoints.
   */
  private async runStateBatch(rows: Row[]): Promise<void> {
    try {
      try {
        const hooks = await this.db.transaction().execute(async (tx) => {
          const hooks: (() => void)[] = [];
          for (const row of rows) await this.runState(tx, row, hooks);
          return hooks;
        });
        this.afterCommit(hooks);
      } catch (error) {
        if (!(error instanceof HandlerFailed)) throw error;
        for (const row of rows) {
          try {
            const hooks: (() => void)[] = [];
            await this.db.transaction().execute((tx) => this.runState(tx, row, hooks));
            this.afterCommit(hooks);
          } catch (failure) {
            if (!(failure instanceof HandlerFailed)) throw failure;
            await this.recordFailure(this.db, row, failure.error);
          }
        }
      }
    } catch (error) {
      this.logger.error({ err: error }, 'state batch failed; its jobs return when their lease ends');
    }
  }

  /** Marks the job done, if it is still ours, and applies its handler in the same transaction. */
  private async runState(tx: Transaction<EngineTables>, row: Row, hooks: (() => void)[]): Promise<void> {
    const taken = await finishJob(tx, {
      key: row.key,
      now: Date.now(),
      instance: this.instanceId,
      attempts: row.attempts,
    });
    // Cancelled, or taken over after our lease ran out.
    if (Number(taken.numAffectedRows) === 0) return;
    const handler = this.handlers[row.kind] as StateHandler<DB>;
    const mine: (() => void)[] = [];
    try {
      await traced(row, () =>
        handler.run(toJob(row), tx as unknown as Transaction<DB>, { afterCommit: (fn) => mine.push(fn) }),
      );
    } catch (error) {
      throw new HandlerFailed(error);
    }
    hooks.push(...mine);
  }

  private afterCommit(hooks: (() => void)[]) {
    for (const fn of hooks) {
      try {
        fn();
      } catch (error) {
        this.logger.error({ err: error }, 'after-commit hook failed');
      }
    }
  }

  /** Claims due deliveries for the free slots and starts them. */
  private async claimDeliveries(): Promise<{ full: boolean }> {
    const free = this.concurrency - this.delivering.size;
    if (this.deliveryKinds.length === 0 || free <= 0) return { full: false };
    const limit = Math.min(free, this.batchSize);
    const rows = await this.claim(this.deliveryKinds, limit);
    for (const row of rows) {
      // Our own lease ran out while the handler still runs: let that run finish.
      if (this.delivering.has(row.key)) continue;
      this.delivering.add(row.key);
      void this.deliver(row);
    }
    return { full: rows.length === limit };
  }

  private async deliver(row: Row): Promise<void> {
    const handler = this.handlers[row.kind] as DeliveryHandler;
    const outcome: Outcome = { row };
    try {
      await traced(row, () => handler.run(toJob(row)));
    } catch (error) {
      outcome.error = error;
    }
    this.delivering.delete(row.key);
    this.outcomes.push(outcome);
    this.wake();
    this.checkQuiet();
  }

  /** Writes finished deliveries; a job taken over after our lease ran out keeps its new owner's outcome. */
  private async flushOutcomes(): Promise<void> {
    if (this.outcomes.length === 0) return;
    const batch = this.outcomes;
    this.outcomes = [];
    try {
      const done = batch.filter((outcome) => !('error' in outcome)).map((outcome) => outcome.row.key);
      for (let i = 0; i < done.length; i += IN_LIST_CHUNK) {
        await this.db
          .updateTable('jobs')
          .set({ state: 'done', run_at: Date.now(), lease_until: null, last_error: null })
          .where('key', 'in', done.slice(i, i + IN_LIST_CHUNK))
          .where('state', '=', 'queued')
          .where('claimed_by', '=', this.instanceId)
          .execute();
      }
      for (const outcome of batch) {
        if ('error' in outcome) await this.recordFailure(this.db, outcome.row, outcome.error);
      }
    } catch (error) {
      this.outcomes.unshift(...batch);
      throw error;
    }
  }

  /** Schedules the next attempt after backoff, or dead-letters the job after the last one. */
  private async recordFailure(db: Kysely<EngineTables>, row: Row, error: unknown): Promise<void> {
    const retry = this.retryOf(row);
    const message = error instanceof Error ? error.message : String(error);
    const now = Date.now();
    const dead = row.attempts >= retry.attempts;
    const context = { key: row.key, kind: row.kind, attempt: row.attempts, error: message };
    if (dead) this.logger.error(context, 'job dead-lettered after its last attempt');
    else this.logger.warn(context, 'job failed; will retry');
    await db
      .updateTable('jobs')
      .set({
        state: dead ? 'dead' : 'queued',
        run_at: dead ? now : now + backoffMs(row.attempts, retry),
        claimed_by: dead ? this.instanceId : null,
        lease_until: null,
        last_error: message.slice(0, 2000),
      })
      .where('key', '=', row.key)
      .where('state', '=', 'queued')
      .where('claimed_by', '=', this.instanceId)
      .where('attempts', '=', row.attempts)
      .execute();
  }

  /** Drops done jobs past retention, at most once per sweep interval. */
  private async purge(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPurge < this.sweepMs) return;
    this.lastPurge = now;
    await this.db
      .deleteFrom('jobs')
      .where('state', '=', DONE)
      .where('run_at', '<', now - this.retentionMs)
      .execute();
  }
}

const finishJob = prepared(
  (db: Kysely<EngineTables>, v: { key: string; now: number; instance: string; attempts: number }) =>
    db
      .updateTable('jobs')
      .set({ state: DONE, run_at: v.now, lease_until: null, last_error: null })
      .where('key', '=', v.key)
      .where('state', '=', QUEUED)
      .where('claimed_by', '=', v.instance)
      .where('attempts', '=', v.attempts),
);

/** Runs a job's handler in a span of the trace that enqueued it (see enqueue). */
function traced(row: Row, run: () => Promise<void>): Promise<void> {
  return inSpan(
    'broker',
    `job ${row.kind}`,
    {
      kind: SpanKind.CONSUMER,
      parent: contextFrom(row.traceparent),
      attributes: { 'job.key': row.key, 'job.attempt': row.attempts },
    },
    run,
  );
}

function toJob(row: Row): Job {
  return {
    key: row.key,
    kind: row.kind,
    payload: JSON.parse(row.payload),
    attempt: row.attempts,
    createdAt: row.created_at,
  };
}
