/**
 * Reconciliation with Skaha callbacks on: every callback is dropped, yet the batched watcher,
 * run at the reconcile interval and at start-up, reports each change once.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { startSkahaEmulator, type SkahaEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startSkahaWorker } from '../src/worker.ts';
import { containerCommand, emulatorOptions, waitFor } from './stack.ts';

let skaha: SkahaEmulator;
let receiver: Server;
let receiverUrl: string;
let dir: string;
const received: Ivoa.ComponentCallback[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skaha-reconcile-'));
  // Jobs run longer than the reconcile interval, so that RUNNING is seen before COMPLETED.
  skaha = await startSkahaEmulator(
    emulatorOptions({
      timing: { headless: { startupMs: 150, runMs: 1500 } },
      faults: { callbacks: { drop: { rate: 1 } } },
    }),
  );
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push(JSON.parse(body) as Ivoa.ComponentCallback);
      response.writeHead(202).end('{"outcome":"applied"}');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/callbacks`;
});
afterAll(async () => {
  await skaha.close();
  await new Promise((done) => receiver.close(done));
  rmSync(dir, { recursive: true, force: true });
});

const startWorker = (reconcileSeconds: string) =>
  startSkahaWorker(
    loadConfig({
      PORT: '0',
      SKAHA_API_URL: skaha.apiUrl,
      SKAHA_SQLITE_PATH: join(dir, 'skaha.sqlite'),
      SKAHA_CALLBACKS: 'on',
      SKAHA_RECONCILE_SECONDS: reconcileSeconds,
    }),
    { logger: pino({ level: 'silent' }) },
  );

const phasesOf = (uuid: string) => received.filter((c) => c.componentUuid === uuid).map((c) => c.phase);
const completed = (uuid: string) => async () => (phasesOf(uuid).includes('COMPLETED') ? true : undefined);

describe('reconciliation when every Skaha callback is lost', () => {
  it('still reports the session running and then completed, each once', async () => {
    const worker = await startWorker('0.5');
    try {
      expect(worker.callbacks).toBe(true);
      const job = containerCommand(receiverUrl);
      await worker.tracker.handle(job);
      await waitFor('COMPLETED', completed(job.component.uuid));
      // A further reconcile pass finds nothing new to report.
      await new Promise((done) => setTimeout(done, 1200));
      expect(phasesOf(job.component.uuid)).toEqual(['RUNNING', 'COMPLETED']);
      expect(skaha.stats().faults.drop).toBeGreaterThan(0);
    } finally {
      await worker.close();
    }
  });

  it('reports at start-up a session that finished while the worker was down', async () => {
    // Reconciling only at start-up: nothing else can tell the worker the session ended.
    const before = await startWorker('0');
    const job = containerCommand(receiverUrl);
    await before.tracker.handle(job);
    await before.close();
    await new Promise((done) => setTimeout(done, 2000));
    expect(phasesOf(job.component.uuid)).toEqual([]);
    const after = await startWorker('0');
    try {
      await waitFor('COMPLETED after the restart', completed(job.component.uuid));
      expect(phasesOf(job.component.uuid)).toEqual(['COMPLETED']);
    } finally {
      await after.close();
    }
  });
});
