/**
 * A staging job's end, which prepareData announces in a notification of its own, is reported to
 * the broker in the trace of the command that started the staging; and a store from before the
 * components kept that command's trace opens with its rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { DEV_SECRET, signedHeaders, startTracing } from '@srcnet/service-kit';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@srcnet/service-kit/tracing/testing';
import { startPrepareDataEmulator, type PrepareDataEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { openStore } from '../src/store/store.ts';
import { startPrepareDataWorker, type RunningPrepareDataWorker } from '../src/worker.ts';
import { WORLD, waitFor } from './stack.ts';

const SECRET = DEV_SECRET;
const STEP_ID = '0b7d2c52-8f7e-4d57-9d43-5a6bde0e1001';
const DATA_ID = '0b7d2c52-8f7e-4d57-9d43-5a6bde0e1002';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const KINDS = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

const exporter = new InMemorySpanExporter();
let dir: string;
let emulator: PrepareDataEmulator;
let worker: RunningPrepareDataWorker;
let receiver: ReturnType<typeof Fastify>;
let callbackUrl: string;
const received: { callback: Ivoa.ComponentCallback; traceparent: string | undefined }[] = [];

beforeAll(async () => {
  startTracing({ serviceName: 'preparedata-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
  dir = mkdtempSync(join(tmpdir(), 'preparedata-tracing-'));
  emulator = await startPrepareDataEmulator(WORLD);
  worker = await startPrepareDataWorker(
    loadConfig({
      PORT: '0',
      SQLITE_PATH: join(dir, 'worker.sqlite'),
      PREPAREDATA_URL: emulator.url,
      PREPAREDATA_STORAGE_AREA: 'test-area',
      PREPAREDATA_CALLBACKS: 'on',
    }),
    { logger: pino({ level: 'silent' }) },
  );
  receiver = Fastify();
  receiver.post('/callbacks', async (request: FastifyRequest) => {
    const traceparent = request.headers.traceparent;
    received.push({
      callback: request.body as Ivoa.ComponentCallback,
      traceparent: typeof traceparent === 'string' ? traceparent : undefined,
    });
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

const prepare = (): Ivoa.WorkerCommand => ({
  commandId: `${STEP_ID}:${DATA_ID}:prepare`,
  action: 'prepare',
  stepId: STEP_ID,
  owner: 'alice',
  component: { role: 'data', uuid: DATA_ID, kind: 'skao' },
  step: {
    kind: `${KINDS}session/scheduled-execution-session.yaml`,
    schedule: {
      available: { start: `${new Date().toISOString().slice(0, 19)}Z/PT0S`, duration: 'PT1H' },
      releasing: { duration: 'PT10S' },
    },
    data: [
      {
        kind: `${KINDS}data/skao-data-resource.yaml`,
        meta: { uuid: DATA_ID, name: 'small' },
        skao: { namespace: 'testing', objectname: 'small' },
      },
    ],
  } as Ivoa.ScheduledExecutionSession,
  callbackUrl,
});

describe('tracing a staging job', () => {
  it("reports the job's end, from prepareData's notification, in the trace of the command", async () => {
    const body = JSON.stringify(prepare());
    const sent = await fetch(`${worker.url}/commands`, {
      method: 'POST',
      headers: { ...signedHeaders(SECRET, body, 'c1'), traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
      body,
    });
    expect(sent.status).toBe(202);
    const available = await waitFor('data AVAILABLE', () =>
      received.find(({ callback }) => callback.phase === 'AVAILABLE'),
    );
    expect(available.traceparent?.split('-')[1]).toBe(TRACE_ID);

    const spans = exporter.getFinishedSpans();
    const done = spans.find((span) => span.name === 'preparedata job COMPLETED');
    expect(done?.spanContext().traceId).toBe(TRACE_ID);
    // Linked to the notification that told of it, whose request is a trace of its own.
    const notification = spans.find(
      (span) =>
        span.name === 'POST /notifications/preparedata' &&
        done!.links.some((link) => link.context.spanId === span.spanContext().spanId),
    );
    expect(notification).toBeDefined();
    expect(notification!.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it('opens a store whose components table has no traceparent yet, keeping its rows', async () => {
    const path = join(dir, 'old.sqlite');
    const before = await openStore(path);
    await sql`ALTER TABLE components DROP COLUMN traceparent`.execute(before);
    await sql`INSERT INTO components (component_uuid, step_id, owner, role, callback_url, storage_area,
      state, phase, window_end, release_ms, updated_at)
      VALUES ('c', 's', 'alice', 'data', 'http://broker/callbacks', 'area', 'STAGING', 'PREPARING', 0, 0,
      '2026-01-01T00:00:00Z')`.execute(before);
    await before.destroy();
    const after = await openStore(path);
    const rows = await after.selectFrom('components').select(['component_uuid', 'traceparent']).execute();
    await after.destroy();
    expect(rows).toEqual([{ component_uuid: 'c', traceparent: null }]);
  });
});
