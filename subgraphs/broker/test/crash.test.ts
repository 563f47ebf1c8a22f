import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulatedWorker } from '../src/simulation/server.ts';
import { containerStep, waitFor } from './harness.ts';

const SECRET = 'crash-test-secret';
const STEPS = 200;
const dir = mkdtempSync(join(tmpdir(), 'broker-crash-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (process.env.DEBUG_CRASH) console.log('kept', dir);
  else rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

function startBrokerProcess(port: number, workerUrl: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', resolve(import.meta.dirname, '../src/main.ts')],
    {
      env: {
        ...process.env,
        BROKER_PORT: String(port),
        SQLITE_PATH: join(dir, 'broker.sqlite'),
        CALLBACK_SECRET: SECRET,
        JOB_LEASE_SECONDS: '3',
        SKAHA_WORKER_URL: workerUrl,
        HARBOR_WORKER_URL: workerUrl,
        PREPAREDATA_WORKER_URL: workerUrl,
        BOOKING_BLOCK_SECONDS: '1',
        SITE_CORES: '100000',
        SITE_MEMORY_GIB: '100000',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  return child;
}

const step = containerStep('PT10M');

describe('a broker killed mid-lifecycle', () => {
  it('loses no step and applies no worker command twice', async () => {
    const worker = await startSimulatedWorker({
      secret: SECRET,
      prepareMs: { executable: 300, compute: 300 },
      runMs: 1500,
      releaseMs: 100,
      failureRate: 0,
    });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const health = async () =>
      (await fetch(`${url}/readyz`)
        .then((r) => r.ok)
        .catch(() => false)) || undefined;

    let broker = startBrokerProcess(port, worker.url);
    await waitFor('the broker to start', health, 30_000);
    const ids: string[] = [];
    for (let i = 0; i < STEPS; i++) {
      const response = await fetch(`${url}/direct`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(step),
      });
      ids.push((await response.json()).meta.uuid);
    }
    // Mid-lifecycle: some steps are preparing or running, commands and callbacks are in flight.
    await waitFor(
      'some steps running',
      async () => (worker.platform.stats().effective > STEPS ? true : undefined),
      30_000,
    );
    broker.kill('SIGKILL');
    await new Promise((done) => broker.once('exit', done));

    broker = startBrokerProcess(port, worker.url);
    await waitFor('the broker to restart', health, 30_000);
    const phases = await waitFor(
      'every step to complete',
      async () => {
        const all = await Promise.all(
          ids.map(
            async (id) =>
              (
                await (
                  await fetch(`${url}/sessions/${id}`, { headers: { accept: 'application/json' } })
                ).json()
              ).phase as string,
          ),
        );
        if (process.env.DEBUG_CRASH)
          console.log(
            JSON.stringify(
              all.reduce<Record<string, number>>((n, p) => ({ ...n, [p]: (n[p] ?? 0) + 1 }), {}),
            ),
            worker.platform.stats(),
          );
        return all.every((phase) => phase === 'COMPLETED') ? all : undefined;
      },
      90_000,
    );
    expect(phases).toHaveLength(STEPS);
    const stats = worker.platform.stats();
    // Each step: prepare executable, prepare compute, release executable = 3 distinct commands.
    expect(stats.effective).toBe(STEPS * 3);
    expect(stats.received).toBeGreaterThanOrEqual(stats.effective);
    broker.kill('SIGTERM');
    await worker.close();
  }, 180_000);
});
