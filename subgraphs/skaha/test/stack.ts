import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { defaultImages, startSkahaEmulator, type SkahaEmulatorOptions } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startSkahaWorker } from '../src/worker.ts';
import { testBroker } from '../../broker/test/harness.ts';

export const HELLO = 'images.canfar.net/srcnet/hello-headless:1.0';
export const BROKEN = 'images.canfar.net/srcnet/broken:1.0';
export const BROKEN_MESSAGE = 'Error: hello.py exited with code 3';

/** Emulator options for the tests: fast sessions, and one image that always fails. */
export function emulatorOptions(extra: SkahaEmulatorOptions = {}): SkahaEmulatorOptions {
  return {
    timing: { notebook: { startupMs: 150 }, headless: { startupMs: 150, runMs: 200 } },
    terminatingMs: 100,
    tickMs: 5,
    images: [...defaultImages(), { id: BROKEN, types: ['headless'] }],
    imageRules: [{ image: BROKEN, outcome: 'Failed', runMs: 100, message: BROKEN_MESSAGE }],
    ...extra,
  };
}

/** A Skaha emulator and a worker on it, with the worker's own SQLite file. */
export async function skahaStack(env: Record<string, string> = {}, emulator: SkahaEmulatorOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'skaha-worker-'));
  const skaha = await startSkahaEmulator(emulatorOptions(emulator));
  const config = loadConfig({
    PORT: '0',
    SKAHA_API_URL: skaha.apiUrl,
    SKAHA_SQLITE_PATH: join(dir, 'skaha.sqlite'),
    SKAHA_WATCH_FAST_MS: '100',
    SKAHA_WATCH_SLOW_MS: '500',
    ...env,
  });
  const worker = await startSkahaWorker(config, { logger: pino({ level: 'silent' }) });
  return {
    skaha,
    worker,
    config,
    async stop() {
      await worker.close();
      await skaha.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The broker in-process, sending compute and notebook commands to the worker. */
export async function fullStack(env: Record<string, string> = {}, emulator: SkahaEmulatorOptions = {}) {
  const stack = await skahaStack(env, emulator);
  const broker = await testBroker({ SKAHA_WORKER_URL: stack.worker.url });
  return {
    ...stack,
    broker,
    async stop() {
      await broker.stop();
      await stack.stop();
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

export const notebookRequest = () => ({
  executable: {
    kind: `${KIND}executable/jupyter-notebook.yaml`,
    location: 'https://example.org/notebooks/hello.ipynb',
  },
  schedule: { requested: { duration: 'PT10M' } },
});

export const containerRequest = (image = HELLO) => ({
  executable: {
    kind: `${KIND}executable/docker-container.yaml`,
    image: { locations: [image], digest: `sha256:${'c'.repeat(64)}` },
    entrypoint: 'python',
    command: ['hello.py', '--greeting=hi'],
    environment: { GREETING: 'hello' },
  },
  compute: {
    kind: `${KIND}compute/simple-compute-resource.yaml`,
    cores: { min: 2, max: 2 },
    memory: { min: 4, max: 4 },
  },
  schedule: { requested: { duration: 'PT10M' } },
});

/** A worker command, as the broker sends it, that starts a headless container on Skaha. */
export function containerCommand(callbackUrl: string, image = HELLO): Ivoa.WorkerCommand {
  const stepId = randomUUID();
  return {
    commandId: `${stepId}:compute:prepare`,
    action: 'prepare',
    stepId,
    owner: 'alice',
    component: { role: 'compute', uuid: randomUUID(), kind: `${KIND}compute/simple-compute-resource.yaml` },
    step: {
      kind: `${KIND}session/scheduled-execution-session.yaml`,
      executable: { kind: `${KIND}executable/docker-container.yaml`, image: { locations: [image] } },
      compute: {
        kind: `${KIND}compute/simple-compute-resource.yaml`,
        cores: { min: 1, max: 1 },
        memory: { min: 1, max: 1 },
      },
    } as Ivoa.ScheduledExecutionSession,
    callbackUrl,
  };
}
