/**
 * bench/backend-calls: what following Skaha sessions costs Skaha, and how soon the broker learns
 * of a change. For each way of following sessions (Skaha's callback extension, the worker's
 * batched watcher, and the baseline: one `GET /session/{id}` per session every second, as the
 * reference integration does) it runs headless container steps through the real broker (in
 * process), the Skaha worker and the Skaha emulator, all on loopback, and reports:
 *  - Skaha requests per completed step (every request the emulator answered, divided by steps);
 *  - the delay from a Skaha status change (the emulator's own time of the change, read from a
 *    separate callback registration of the benchmark's) to the broker's phase change that it
 *    causes (Running → step RUNNING, Completed → step RELEASING), mean, p50, p99 and max.
 *
 * The emulator and the worker run as processes of their own, as they are deployed; the broker,
 * the baseline poller and the benchmark's driver share this one.
 *
 *   npm run bench -- backend-calls [--steps 40]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_SECRET } from '@srcnet/service-kit';
import type { EmulatorStats } from '../../subgraphs/skaha/emulator/index.ts';
import { SkahaClient } from '../../subgraphs/skaha/src/skaha/index.ts';
import { testBroker } from '../../subgraphs/broker/test/harness.ts';
import { startNaivePoller } from './poller.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '40' } } });
const STEPS = Number(values.steps);
if (!(STEPS >= 1 && STEPS <= 500)) throw new Error('--steps must be from 1 to 500');

const SECRET = DEV_SECRET;
const IMAGE = 'images.canfar.net/srcnet/hello-headless:1.0';
const STARTUP_MS = 400;
const RUN_MS = 1500;
const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
const request = JSON.stringify({
  executable: {
    kind: `${KIND}executable/docker-container.yaml`,
    image: { locations: [IMAGE], digest: `sha256:${'e'.repeat(64)}` },
  },
  compute: {
    kind: `${KIND}compute/simple-compute-resource.yaml`,
    cores: { min: 1, max: 1 },
    memory: { min: 1, max: 1 },
  },
  schedule: { requested: { duration: 'PT10M' } },
});

type Mode = 'callbacks' | 'watcher' | 'poller';

interface Result {
  mode: Mode;
  steps: number;
  completed: number;
  requestsPerStep: number;
  byOperation: Record<string, number>;
  delayMs: { mean: number; p50: number; p99: number; max: number; samples: number };
  seconds: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** Times of Skaha's status changes, by session name, from a callback registration of our own. */
async function changeRecorder() {
  const changes = new Map<string, Map<string, number>>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as { name: string; status: string; time: string };
      const byStatus = changes.get(event.name) ?? new Map<string, number>();
      if (!byStatus.has(event.status)) byStatus.set(event.status, Date.parse(event.time));
      changes.set(event.name, byStatus);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    changes,
    close: () => new Promise((done) => server.close(done)),
  };
}

const ROOT = resolve(import.meta.dirname, '../..');

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** A service in a process of its own, once it answers `health`. */
async function spawnService(
  entry: string,
  env: Record<string, string>,
  health: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', resolve(ROOT, entry)], {
    env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(health)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${entry} did not start`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

const stop = (child: ChildProcess) =>
  new Promise<void>((done) => {
    if (child.exitCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });

async function run(mode: Mode): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-backend-calls-'));
  const emulatorPort = await freePort();
  const emulatorConfig = join(dir, 'emulator.json');
  writeFileSync(
    emulatorConfig,
    JSON.stringify({
      timing: { headless: { startupMs: STARTUP_MS, runMs: RUN_MS } },
      terminatingMs: 200,
      tickMs: 5,
      cluster: { cores: 10_000, ramGB: 100_000 },
    }),
  );
  const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;
  const skahaUrl = `${emulatorUrl}/skaha/v1`;
  const emulator = await spawnService(
    'subgraphs/skaha/emulator/main.ts',
    { SKAHA_EMULATOR_CONFIG: emulatorConfig, SKAHA_EMULATOR_PORT: String(emulatorPort) },
    `${emulatorUrl}/_emulator/stats`,
  );
  const recorder = await changeRecorder();
  await new SkahaClient({ baseUrl: skahaUrl, token: 'dev:dev' }).registerCallback({
    url: recorder.url,
    secret: 'bench-recorder-secret-0123456789',
  });
  let worker: { url: string; close(): Promise<void> };
  if (mode === 'poller') worker = await startNaivePoller({ skahaUrl, secret: SECRET, intervalMs: 1000 });
  else {
    const port = await freePort();
    const child = await spawnService(
      'subgraphs/skaha/src/main.ts',
      {
        PORT: String(port),
        SKAHA_API_URL: skahaUrl,
        SKAHA_SQLITE_PATH: join(dir, 'skaha.sqlite'),
        SKAHA_CALLBACKS: mode === 'callbacks' ? 'on' : 'off',
      },
      `http://127.0.0.1:${port}/readyz`,
    );
    worker = { url: `http://127.0.0.1:${port}`, close: () => stop(child) };
  }
  const broker = await testBroker({
    SKAHA_WORKER_URL: worker.url,
    SITE_CORES: '10000',
    SITE_MEMORY_GIB: '10000',
    SIMULATION_PREPARE_SECONDS: 'executable=0.01',
  });
  await fetch(`${emulatorUrl}/_emulator/stats`, { method: 'DELETE' });
  const started = Date.now();
  const ids = await Promise.all(
    Array.from({ length: STEPS }, async () => {
      const response = await fetch(`${broker.url}/direct`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/json' },
        body: request,
      });
      if (response.status !== 303)
        throw new Error(`direct answered ${response.status}: ${await response.text()}`);
      return ((await response.json()) as { meta: { uuid: string } }).meta.uuid;
    }),
  );
  const done = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const finished = (await broker.broker.steps(ids)).filter((step) => done.has(step.phase)).length;
    if (finished === ids.length || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The last deletes (and the watcher's last listing) belong to these steps too.
  await new Promise((resolve) => setTimeout(resolve, mode === 'callbacks' ? 400 : 1500));
  const seconds = (Date.now() - started) / 1000;
  const { requests } = (await (await fetch(`${emulatorUrl}/_emulator/stats`)).json()) as EmulatorStats;
  const completed = (await broker.broker.steps(ids)).filter((step) => step.phase === 'COMPLETED').length;

  const delays: number[] = [];
  const history = await broker.broker.history(ids);
  for (const id of ids) {
    const changes = recorder.changes.get(`step-${id}`);
    const entries = history.get(id) ?? [];
    const at = (to: string) => {
      const entry = entries.find((h) => h.to === to);
      return entry?.at;
    };
    for (const [status, phase] of [
      ['Running', 'RUNNING'],
      ['Completed', 'RELEASING'],
    ] as const) {
      const changed = changes?.get(status);
      const moved = at(phase);
      if (changed !== undefined && moved !== undefined) delays.push(moved - changed);
    }
  }
  delays.sort((a, b) => a - b);

  await broker.stop();
  await worker.close();
  await recorder.close();
  await stop(emulator);
  rmSync(dir, { recursive: true, force: true });
  return {
    mode,
    steps: STEPS,
    completed,
    requestsPerStep: round(requests.total / Math.max(1, completed), 2),
    byOperation: requests.byOperation as Record<string, number>,
    delayMs: {
      mean: round(delays.reduce((sum, d) => sum + d, 0) / Math.max(1, delays.length)),
      p50: round(quantile(delays, 0.5)),
      p99: round(quantile(delays, 0.99)),
      max: round(delays.at(-1) ?? NaN),
      samples: delays.length,
    },
    seconds: round(seconds),
  };
}

const results: Result[] = [];
for (const mode of ['callbacks', 'watcher', 'poller'] as const) results.push(await run(mode));

const rows = [
  [
    'mode',
    'steps done',
    'Skaha req/step',
    'requests by operation',
    'delay mean',
    'p50',
    'p99',
    'max',
    'seconds',
  ],
  ...results.map((r) => [
    r.mode,
    `${r.completed}/${r.steps}`,
    String(r.requestsPerStep),
    Object.entries(r.byOperation)
      .map(([op, n]) => `${op}=${n}`)
      .join(' '),
    `${r.delayMs.mean} ms`,
    `${r.delayMs.p50} ms`,
    `${r.delayMs.p99} ms`,
    `${r.delayMs.max} ms`,
    String(r.seconds),
  ]),
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
console.log(
  `Skaha requests per completed headless step, and delay from a Skaha status change to the broker's phase change\n` +
    `(${STEPS} steps per mode; sessions start in ${STARTUP_MS} ms and run ${RUN_MS} ms; watcher 1 s fast / 10 s slow; poller every 1 s)\n`,
);
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
const callbacks = results.find((r) => r.mode === 'callbacks')!;
console.log(
  `\ntarget with callbacks: ≤ 3 requests per step (${callbacks.requestsPerStep}) and p99 < 100 ms (${callbacks.delayMs.p99} ms): ${
    callbacks.requestsPerStep <= 3 && callbacks.delayMs.p99 < 100 ? 'met' : 'NOT met'
  }`,
);
console.log(JSON.stringify({ benchmark: 'backend-calls', steps: STEPS, results }));
