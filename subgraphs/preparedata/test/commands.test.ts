import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { DEV_SECRET, signedHeaders } from '@srcnet/service-kit';
import { startPrepareDataEmulator, type PrepareDataEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startPrepareDataWorker, type RunningPrepareDataWorker } from '../src/worker.ts';
import { WORLD, waitFor } from './stack.ts';

const SECRET = DEV_SECRET;
const STEP_ID = '0b7d2c52-8f7e-4d57-9d43-5a6bde0e0001';
const DATA_ID = '0b7d2c52-8f7e-4d57-9d43-5a6bde0e0002';
const STORAGE_ID = '0b7d2c52-8f7e-4d57-9d43-5a6bde0e0003';
const schedule = {
  available: { start: `${new Date().toISOString().slice(0, 19)}Z/PT0S`, duration: 'PT1H' },
  releasing: { duration: 'PT10S' },
};

let dir: string;
let emulator: PrepareDataEmulator;
let worker: RunningPrepareDataWorker;
let receiver: ReturnType<typeof Fastify>;
let callbackUrl: string;
const received: Ivoa.ComponentCallback[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'preparedata-commands-'));
  emulator = await startPrepareDataEmulator(WORLD);
  worker = await startPrepareDataWorker(
    loadConfig({
      PORT: '0',
      SQLITE_PATH: join(dir, 'worker.sqlite'),
      PREPAREDATA_URL: emulator.url,
      PREPAREDATA_STORAGE_AREA: 'test-area',
    }),
    { logger: pino({ level: 'silent' }) },
  );
  receiver = Fastify();
  receiver.post('/callbacks', async (request: { body: unknown }) => {
    received.push(request.body as Ivoa.ComponentCallback);
    return { outcome: 'applied' };
  });
  callbackUrl = (await receiver.listen({ host: '127.0.0.1', port: 0 })) + '/callbacks';
});
afterAll(async () => {
  await worker?.close();
  await receiver?.close();
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

function command(role: 'storage' | 'data', action: Ivoa.WorkerAction): Ivoa.WorkerCommand {
  const uuid = role === 'data' ? DATA_ID : STORAGE_ID;
  return {
    commandId: `${STEP_ID}:${uuid}:${action}`,
    action,
    stepId: STEP_ID,
    owner: 'alice',
    component: { role, uuid, kind: role === 'data' ? 'skao' : 'storage' },
    step: {
      kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/scheduled-execution-session.yaml',
      schedule,
      storage: [
        {
          kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/storage/simple-storage-resource.yaml',
          meta: { uuid: STORAGE_ID, name: 'scratch' },
        },
      ],
      data: [
        {
          kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/skao-data-resource.yaml',
          meta: { uuid: DATA_ID, name: 'small' },
          skao: { namespace: 'testing', objectname: 'small' },
        },
      ],
    } as Ivoa.ScheduledExecutionSession,
    callbackUrl,
  };
}

const send = (body: string, id: string, secret = SECRET) =>
  fetch(`${worker.url}/commands`, { method: 'POST', headers: signedHeaders(secret, body, id), body });

describe('POST /commands', () => {
  it('refuses a bad signature (401) and a malformed command (400, naming the field)', async () => {
    const body = JSON.stringify(command('data', 'prepare'));
    expect((await send(body, 'x', 'wrong-secret-wrong-secret')).status).toBe(401);
    const bad = await send(JSON.stringify({ ...command('data', 'prepare'), action: 'explode' }), 'y');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('/action');
  });

  it('makes storage AVAILABLE at once and stages data once however often the command comes', async () => {
    const storage = JSON.stringify(command('storage', 'prepare'));
    const data = JSON.stringify(command('data', 'prepare'));
    const answers = await Promise.all([
      send(storage, 's'),
      send(data, 'd'),
      send(data, 'd'),
      send(data, 'd'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202]);
    await waitFor('data AVAILABLE', () =>
      received.some((cb) => cb.componentUuid === DATA_ID && cb.phase === 'AVAILABLE') ? true : undefined,
    );
    expect(received.find((cb) => cb.componentUuid === STORAGE_ID)).toMatchObject({
      phase: 'AVAILABLE',
      message: 'storage area test-area',
    });
    expect(emulator.stats().requests.byOperation.submit).toBe(1);
    const sequences = received.filter((cb) => cb.componentUuid === DATA_ID).map((cb) => cb.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));

    await send(JSON.stringify(command('data', 'release')), 'r');
    await send(JSON.stringify(command('storage', 'release')), 'r2');
    await waitFor('both COMPLETED', () =>
      received.filter((cb) => cb.phase === 'COMPLETED').length === 2 ? true : undefined,
    );
    expect(emulator.stats().requests.byOperation.release).toBe(1);
  });
});
