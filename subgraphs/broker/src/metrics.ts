import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Kysely } from 'kysely';
import { jobStats, type Engine, type EngineTables } from './engine/index.ts';
import type { BrokerTables } from './steps/tables.ts';

/** The broker's Prometheus metrics at /metrics; docs/operations.md says what each means. */
export function brokerMetrics(db: Kysely<BrokerTables & EngineTables>, engine: () => Engine | undefined) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'srcnet_steps',
    help: 'Steps by phase',
    labelNames: ['phase'],
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('steps')
        .select(['phase', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('phase')
        .execute();
      this.reset();
      for (const row of rows) this.set({ phase: row.phase }, Number(row.n));
    },
  });
  new Gauge({
    name: 'srcnet_jobs',
    help: 'Durable jobs (timers and worker commands) by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const stats = await jobStats(db);
      this.set({ state: 'due' }, stats.due);
      this.set({ state: 'claimed' }, stats.claimed);
      this.set({ state: 'scheduled' }, stats.scheduled);
      this.set({ state: 'dead' }, stats.dead);
      this.set({ state: 'running_here' }, engine()?.running ?? 0);
    },
  });
  new Gauge({
    name: 'srcnet_jobs_oldest_due_seconds',
    help: 'How long the oldest due job has waited',
    registers: [registry],
    async collect() {
      const stats = await jobStats(db);
      this.set((stats.oldestDueMs ?? 0) / 1000);
    },
  });
  const callbackDelay = new Histogram({
    name: 'srcnet_callback_delay_seconds',
    help: 'From a worker reporting a change to the broker committing it',
    labelNames: ['source'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'srcnet_step_transitions_total',
    help: 'Step phase changes by the phase entered',
    labelNames: ['to'],
    registers: [registry],
  });
  const reconciledCallbacks = new Counter({
    name: 'srcnet_reconciled_callbacks_total',
    help: 'Worker callbacks the broker had missed and applied when it reconciled, by worker',
    labelNames: ['worker'],
    registers: [registry],
  });
  return { registry, callbackDelay, transitions, reconciledCallbacks };
}

export type BrokerMetrics = ReturnType<typeof brokerMetrics>;
