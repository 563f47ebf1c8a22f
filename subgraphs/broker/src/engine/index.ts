/**
 * The broker's only way to do asynchronous work: a durable job queue in the broker's database.
 * Jobs are enqueued inside the caller's transaction (a transactional outbox and durable timers),
 * run by state handlers (exactly once, inside a transaction) or delivery handlers (at least once,
 * with lease, backoff and dead-letter), and woken by events rather than polling. See README.md.
 */
export { cancel, deadJobs, enqueue, jobStats } from './queue.ts';
export type { DeadJob, EnqueueResult, JobStats, NewJob } from './queue.ts';
export { startEngine } from './runner.ts';
export type {
  CommitHooks,
  DeliveryHandler,
  Engine,
  EngineLogger,
  EngineOptions,
  Handler,
  Job,
  StateHandler,
} from './runner.ts';
export { engineMigrations, type EngineTables, type JobsDb, type JobState, type JobsTable } from './tables.ts';
