/**
 * Job engine throughput on SQLite (file, WAL) and PostgreSQL (scratch database, when reachable).
 * Usage: node --conditions=source --import tsx subgraphs/broker/src/engine/measure.ts
 *          [--jobs 10000] [--steps 10000] [--pg-steps 2000] [--batch 100] [--concurrency 32]
 *          [--dialects sqlite,postgres]
 * Scenarios:
 *   enqueue     one job per transaction, as request handlers make them
 *   state       chained state jobs: each updates a row and enqueues the next stage
 *   delivery    delivery jobs with an instant in-process handler (claim, run, record)
 *   steps       the broker's loop: a transition (state job: update the step, enqueue a command),
 *               the command (delivery job) answered by a callback transaction that enqueues the
 *               next transition; 10 transitions per step. jobs/s counts transitions + commands.
 * Times and event-loop delay are taken after seeding.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { openStore, type Dialect, type Store } from '../store/index.ts';
import { postgresReachable, scratchDatabase } from '../store/scratch.ts';
import { enqueue, startEngine, type EngineTables, type Handler } from './index.ts';
import { engineMigrations } from './tables.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '10000' },
    steps: { type: 'string', default: '10000' },
    'pg-steps': { type: 'string', default: '2000' },
    batch: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '32' },
    dialects: { type: 'string', default: 'sqlite,postgres' },
  },
});
const JOBS = Number(values.jobs);
const BATCH = Number(values.batch);
const CONCURRENCY = Number(values.concurrency);
const TRANSITIONS = 10;

interface Tables extends EngineTables {
  steps: { id: string; phase: number; version: number };
}

const stepsMigration = {
  '900-measure-steps': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('steps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('phase', 'integer', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .execute();
    },
  },
};

interface Result {
  dialect: Dialect;
  scenario: string;
  jobs: number;
  steps?: number;
  seconds: number;
  p99: number;
}

const results: Result[] = [];

/** What a scenario reports; `begin` starts the clock and the event-loop histogram after seeding. */
type Scenario = (store: Store<Tables>, begin: () => void) => Promise<{ jobs: number; steps?: number }>;

async function measure(dialect: Dialect, scenario: string, work: Scenario): Promise<void> {
  const scratch = await scratchDatabase(dialect);
  const store = await openStore<Tables>({ url: scratch.url, migrations: [engineMigrations, stepsMigration] });
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let started = 0;
  const begin = () => {
    delay.enable();
    started = performance.now();
  };
  try {
    const counts = await work(store, begin);
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    results.push({ dialect, scenario, ...counts, seconds, p99: delay.percentile(99) / 1e6 });
    console.error(`${dialect} ${scenario}: ${Math.round(counts.jobs / seconds)} jobs/s`);
  } finally {
    await store.close();
    await scratch.drop();
  }
}

/** Seeds, then starts the clock and an engine; `finished` is for the handler that sees the last job. */
async function runEngine(
  store: Store<Tables>,
  begin: () => void,
  handlers: Record<string, Handler<Tables>>,
  seed: () => Promise<void>,
) {
  await seed();
  begin();
  const engine = startEngine({ store, handlers, batchSize: BATCH, concurrency: CONCURRENCY });
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  return { engine, done, finished };
}

const step = (db: Kysely<Tables>, id: string) =>
  db
    .updateTable('steps')
    .set((eb) => ({ phase: eb('phase', '+', 1), version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .execute();

async function scenarios(dialect: Dialect, steps: number) {
  await measure(dialect, 'enqueue', async (store, begin) => {
    begin();
    for (let i = 0; i < JOBS; i++) {
      await store.transaction((tx) => enqueue(tx, { kind: 'x', key: `x:${i}`, payload: { i } }));
    }
    return { jobs: JOBS };
  });

  await measure(dialect, 'state', async (store, begin) => {
    const chains = JOBS / TRANSITIONS;
    let left = JOBS;
    const { engine, done, finished } = await runEngine(
      store,
      begin,
      {
        stage: {
          style: 'state',
          run: async (job, tx) => {
            const { chain, stage } = job.payload as { chain: number; stage: number };
            await step(tx, `c${chain}`);
            if (stage < TRANSITIONS) {
              await enqueue(tx, {
                kind: 'stage',
                key: `s:${chain}:${stage + 1}`,
                payload: { chain, stage: stage + 1 },
              });
            }
            if (--left === 0) finished();
          },
        },
      },
      () =>
        store.transaction(async (tx) => {
          for (let chain = 0; chain < chains; chain++) {
            await tx
              .insertInto('steps')
              .values({ id: `c${chain}`, phase: 0, version: 0 })
              .execute();
            await enqueue(tx, { kind: 'stage', key: `s:${chain}:1`, payload: { chain, stage: 1 } });
          }
        }),
    );
    await done;
    await engine.stop();
    return { jobs: JOBS };
  });

  await measure(dialect, 'delivery', async (store, begin) => {
    let left = JOBS;
    const { engine, done, finished } = await runEngine(
      store,
      begin,
      { send: { style: 'delivery', run: async () => void (--left === 0 && finished()) } },
      () =>
        store.transaction(async (tx) => {
          for (let i = 0; i < JOBS; i++) await enqueue(tx, { kind: 'send', key: `d:${i}`, payload: { i } });
        }),
    );
    await done;
    await engine.drain();
    await engine.stop();
    return { jobs: JOBS };
  });

  await measure(dialect, `steps (${steps}×${TRANSITIONS})`, async (store, begin) => {
    let left = steps;
    const { engine, done, finished } = await runEngine(
      store,
      begin,
      {
        transition: {
          style: 'state',
          run: async (job, tx) => {
            const { id, n } = job.payload as { id: string; n: number };
            await step(tx, id);
            if (n === TRANSITIONS) {
              if (--left === 0) finished();
              return;
            }
            await enqueue(tx, { kind: 'command', key: `cmd:${id}:${n}`, payload: { id, n } });
          },
        },
        command: {
          style: 'delivery',
          // The worker answers at once; its callback is a transaction of its own, like the broker's.
          run: async (job) => {
            const { id, n } = job.payload as { id: string; n: number };
            await store.transaction((tx) =>
              enqueue(tx, { kind: 'transition', key: `tr:${id}:${n + 1}`, payload: { id, n: n + 1 } }),
            );
          },
        },
      },
      async () => {
        for (let i = 0; i < steps; i += 500) {
          await store.transaction(async (tx) => {
            for (let s = i; s < Math.min(steps, i + 500); s++) {
              await tx
                .insertInto('steps')
                .values({ id: `st${s}`, phase: 0, version: 0 })
                .execute();
              await enqueue(tx, { kind: 'transition', key: `tr:st${s}:1`, payload: { id: `st${s}`, n: 1 } });
            }
          });
        }
      },
    );
    await done;
    await engine.stop();
    return { jobs: steps * (2 * TRANSITIONS - 1), steps };
  });
}

const dialects = values.dialects.split(',');
if (dialects.includes('sqlite')) await scenarios('sqlite', Number(values.steps));
if (dialects.includes('postgres') && (await postgresReachable()))
  await scenarios('postgres', Number(values['pg-steps']));

const rows = results.map((r) => [
  r.dialect,
  r.scenario,
  String(r.jobs),
  r.seconds.toFixed(2),
  String(Math.round(r.jobs / r.seconds)),
  r.steps === undefined ? '' : String(Math.round(r.steps / r.seconds)),
  r.p99.toFixed(1),
]);
const header = ['dialect', 'scenario', 'jobs', 'seconds', 'jobs/s', 'steps/s', 'loop p99 ms'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
