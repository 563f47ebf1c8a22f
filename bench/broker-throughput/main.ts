/**
 * bench/broker-throughput: drives steps through the whole lifecycle (direct execution of a
 * container; simulated preparation with no delay; the container exits at once) and measures
 * steps per second end to end, accept-to-AVAILABLE latency, the broker's peak RSS, heap growth and
 * event-loop delay, on SQLite and on PostgreSQL. The baseline, in the same run, is the same broker
 * with jobs looked for once a second (JOB_WAKE=poll), the reference broker's processing loop.
 *
 *   npm run bench -- broker-throughput [--steps 10000] [--baseline-steps 1000] [--concurrency 32]
 *     [--stores sqlite,postgres]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { serviceAvailable, TEST_DATABASE_URL } from '@srcnet/service-kit/testing';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    'baseline-steps': { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '32' },
    stores: { type: 'string', default: 'sqlite,postgres' },
  },
});
const STEPS = Number(values.steps);
const BASELINE_STEPS = Number(values['baseline-steps']);
const CONCURRENCY = Number(values.concurrency);
const main = resolve(import.meta.dirname, '../../subgraphs/broker/src/main.ts');

const request = JSON.stringify({
  executable: {
    kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml',
    image: { locations: ['images.canfar.net/skaha/bench:1'], digest: `sha256:${'d'.repeat(64)}` },
  },
  schedule: { requested: { duration: 'PT5M' } },
});

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

async function metric(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_0-9]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
    if (match) out.set(match[1]!, Number(match[2]));
  }
  return out;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

interface Run {
  store: 'sqlite' | 'postgres';
  mode: 'event-driven' | 'poll (baseline)';
  steps: number;
  seconds: number;
  stepsPerSecond: number;
  acceptToAvailableP50Ms: number;
  acceptToAvailableP99Ms: number;
  peakRssMB: number;
  /** The broker's CPU time (all threads) per step: steadier than wall time on a shared machine. */
  cpuMsPerStep: number;
  heapGrowthBytesPerStep: number;
  eventLoopDelayP99Ms: number;
}

async function run(store: Run['store'], mode: Run['mode'], steps: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-broker-'));
  let databaseUrl: string | undefined;
  let dbName: string | undefined;
  if (store === 'postgres') {
    dbName = `bench_${randomUUID().replace(/-/g, '')}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${dbName}`);
    await admin.end();
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${dbName}`;
    databaseUrl = url.toString();
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', main], {
    env: {
      ...process.env,
      BROKER_PORT: String(port),
      SQLITE_PATH: join(dir, 'broker.sqlite'),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      JOB_WAKE: mode === 'event-driven' ? 'commit' : 'poll',
      BOOKING_BLOCK_SECONDS: '0.05',
      BOOKING_LOOKAHEAD_HOURS: '0.12',
      MAX_OFFER_HOURS: '0.12',
      SITE_CORES: '1000000',
      SITE_MEMORY_GIB: '1000000',
      SIMULATION_PREPARE_SECONDS: 'executable=0,compute=0,storage=0,data=0',
      SIMULATION_RUN_SECONDS: '0',
      SIMULATION_RELEASE_SECONDS: '0',
      PREPARATION_ESTIMATE: 'zero',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      if (
        await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error('the broker did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    let peakRss = 0;
    let eld = 0;
    let heapAtQuarter: number | undefined;
    let completed = 0;
    let failed = 0;
    const sample = async () => {
      const m = await metric(url);
      peakRss = Math.max(peakRss, m.get('process_resident_memory_bytes') ?? 0);
      eld = Math.max(eld, m.get('nodejs_eventloop_lag_p99_seconds') ?? 0);
      completed = m.get('srcnet_steps{phase="COMPLETED"}') ?? 0;
      failed = m.get('srcnet_steps{phase="FAILED"}') ?? 0;
      if (heapAtQuarter === undefined && completed >= steps / 4)
        heapAtQuarter = m.get('nodejs_heap_size_used_bytes');
      return m;
    };
    const cpuAtStart = (await sample()).get('process_cpu_seconds_total') ?? 0;
    const started = Date.now();
    // autocannon sends the exact number of requests with far less client CPU than fetch, so the
    // load generator (which shares the machine) is not what is measured.
    const load = await autocannon({
      url: `${url}/direct`,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: request,
      connections: CONCURRENCY,
      amount: steps,
      timeout: 60,
    });
    const errors =
      load.errors + load.timeouts > 0 ? [`${load.errors} errors, ${load.timeouts} timeouts`] : [];
    const sampler = setInterval(() => void sample().catch(() => {}), 500);
    if (errors.length) throw new Error(`direct requests failed: ${errors.join(', ')}`);
    while (completed + failed < steps) {
      await new Promise((r) => setTimeout(r, 100));
      await sample();
      if (Date.now() - started > 600_000)
        throw new Error(`only ${completed} of ${steps} completed in 10 minutes`);
    }
    const cpuSeconds = ((await sample()).get('process_cpu_seconds_total') ?? 0) - cpuAtStart;
    if (failed > 0)
      throw new Error(`${failed} of ${steps} steps FAILED (${store}, ${mode}); the figures would mislead`);
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 1500));
    const final = await sample();
    const heapEnd = final.get('nodejs_heap_size_used_bytes') ?? 0;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    const query = `select a.at as accepted, b.at as available from step_history a join step_history b on a.step_id = b.step_id where a.to_phase = 'ACCEPTED' and b.to_phase = 'AVAILABLE'`;
    // The run ends when the last step did, by the broker's own record: polling for it (and
    // autocannon, which finishes on a whole second) would add up to a second.
    const lastQuery = `select max(at) as last from step_history where to_phase in ('COMPLETED', 'FAILED')`;
    let rows: { accepted: number; available: number }[];
    let last: number;
    if (store === 'sqlite') {
      const db = new Database(join(dir, 'broker.sqlite'), { readonly: true });
      rows = db.prepare(query).all() as typeof rows;
      last = Number((db.prepare(lastQuery).get() as { last: number }).last);
      db.close();
    } else {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      rows = (await client.query(query)).rows.map((r) => ({
        accepted: Number(r.accepted),
        available: Number(r.available),
      }));
      last = Number((await client.query(lastQuery)).rows[0].last);
      await client.end();
    }
    const seconds = (last - started) / 1000;
    const latencies = rows.map((r) => r.available - r.accepted).sort((a, b) => a - b);
    return {
      store,
      mode,
      steps,
      seconds: Number(seconds.toFixed(2)),
      stepsPerSecond: Math.round(steps / seconds),
      acceptToAvailableP50Ms: percentile(latencies, 0.5),
      acceptToAvailableP99Ms: percentile(latencies, 0.99),
      peakRssMB: Math.round(peakRss / 1e6),
      cpuMsPerStep: Number(((cpuSeconds * 1000) / steps).toFixed(2)),
      heapGrowthBytesPerStep: Math.round((heapEnd - (heapAtQuarter ?? heapEnd)) / (steps * 0.75)),
      eventLoopDelayP99Ms: Number((eld * 1000).toFixed(1)),
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    if (dbName) {
      const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      await admin.query(`drop database if exists ${dbName} with (force)`);
      await admin.end();
    }
  }
}

const runs: Run[] = [];
const stores: Run['store'][] = [];
for (const store of values.stores.split(',')) {
  if (store !== 'sqlite' && store !== 'postgres')
    throw new Error(`--stores: ${store} is neither sqlite nor postgres`);
  if (store === 'postgres' && !(await serviceAvailable('PostgreSQL'))) continue;
  stores.push(store);
}
for (const store of stores) {
  runs.push(await run(store, 'event-driven', STEPS));
  runs.push(await run(store, 'poll (baseline)', BASELINE_STEPS));
}

const columns: [keyof Run, string][] = [
  ['store', 'store'],
  ['mode', 'mode'],
  ['steps', 'steps'],
  ['seconds', 's'],
  ['stepsPerSecond', 'steps/s'],
  ['acceptToAvailableP50Ms', 'accept→AVAILABLE p50 ms'],
  ['acceptToAvailableP99Ms', 'p99 ms'],
  ['peakRssMB', 'peak RSS MB'],
  ['cpuMsPerStep', 'CPU ms/step'],
  ['heapGrowthBytesPerStep', 'heap growth B/step'],
  ['eventLoopDelayP99Ms', 'event-loop delay p99 ms'],
];
const widths = columns.map(([key, title]) =>
  Math.max(title.length, ...runs.map((r) => String(r[key]).length)),
);
console.log(columns.map(([, title], i) => title.padEnd(widths[i]!)).join('  '));
for (const r of runs) console.log(columns.map(([key], i) => String(r[key]).padEnd(widths[i]!)).join('  '));
const ratio = (store: string) => {
  const ours = runs.find((r) => r.store === store && r.mode === 'event-driven');
  const base = runs.find((r) => r.store === store && r.mode !== 'event-driven');
  return ours && base ? Number((ours.stepsPerSecond / base.stepsPerSecond).toFixed(1)) : null;
};
console.log(
  `\nevent-driven / polling steps per second: ${stores.map((s) => `${s} ${ratio(s)}×`).join(', ')}`,
);
console.log(
  JSON.stringify({
    benchmark: 'broker-throughput',
    runs,
    speedup: Object.fromEntries(stores.map((s) => [s, ratio(s)])),
  }),
);
