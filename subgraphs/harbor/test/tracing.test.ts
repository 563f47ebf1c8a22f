/**
 * An image copy's end, which Harbor announces in a webhook, is reported to the broker in the trace
 * of the command that started the copy; and a store from before the images kept that command's
 * trace opens with its rows.
 */
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { DEV_SECRET, signedHeaders, startTracing } from '@srcnet/service-kit';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@srcnet/service-kit/tracing/testing';
import { startHarborEmulator, type HarborEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { openStore } from '../src/store/store.ts';
import { startHarborWorker, type RunningHarborWorker } from '../src/worker.ts';
import { DOCKER_KIND, waitFor } from './stack.ts';

const SECRET = DEV_SECRET;
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const SESSION_KIND =
  'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/scheduled-execution-session.yaml';

const exporter = new InMemorySpanExporter();
let dir: string;
let source: HarborEmulator;
let harbor: HarborEmulator;
let worker: RunningHarborWorker;
let receiver: Server;
let callbackUrl: string;
const received: { callback: Ivoa.ComponentCallback; traceparent: string | undefined }[] = [];

beforeAll(async () => {
  startTracing({ serviceName: 'harbor-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
  dir = mkdtempSync(join(tmpdir(), 'harbor-tracing-'));
  source = await startHarborEmulator({ projects: [{ name: 'ivoa', public: true }] });
  source.addLocalImage({ image: 'ivoa/webtop:1.0', size: 4 * 1024 * 1024, layers: 2 });
  harbor = await startHarborEmulator({
    timing: { timeScale: 0.1, jitter: 0 },
    projects: [{ name: 'skaha' }],
  });
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const traceparent = request.headers.traceparent;
      received.push({
        callback: JSON.parse(body) as Ivoa.ComponentCallback,
        traceparent: typeof traceparent === 'string' ? traceparent : undefined,
      });
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"outcome":"applied"}');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  callbackUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/callbacks`;
  worker = await startHarborWorker(
    loadConfig({
      PORT: '0',
      HARBOR_SQLITE_PATH: join(dir, 'harbor.sqlite'),
      HARBOR_URL: harbor.url,
      HARBOR_UPSTREAM_URLS: `${new URL(source.url).host}=${source.url}`,
      HARBOR_WEBHOOKS: 'on',
    }),
    { logger: pino({ level: 'silent' }) },
  );
  await worker.ready;
});
afterAll(async () => {
  await worker?.close();
  await harbor?.close();
  await source?.close();
  await new Promise((done) => receiver?.close(done));
  rmSync(dir, { recursive: true, force: true });
});

describe('tracing an image copy', () => {
  it("reports the copy's end, from Harbor's webhook, in the trace of the command", async () => {
    const [stepId, uuid] = [randomUUID(), randomUUID()];
    const command: Ivoa.WorkerCommand = {
      commandId: `${stepId}:${uuid}:prepare`,
      action: 'prepare',
      stepId,
      owner: 'alice',
      component: { role: 'executable', uuid, kind: DOCKER_KIND },
      step: {
        kind: SESSION_KIND,
        meta: { uuid: stepId },
        phase: 'PREPARING',
        executable: {
          kind: DOCKER_KIND,
          meta: { uuid },
          image: { locations: [`${new URL(source.url).host}/ivoa/webtop:1.0`] },
        },
      } as unknown as Ivoa.ScheduledExecutionSession,
      callbackUrl,
    };
    const body = JSON.stringify(command);
    const sent = await fetch(`${worker.url}/commands`, {
      method: 'POST',
      headers: {
        ...signedHeaders(SECRET, body, command.commandId),
        traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01`,
      },
      body,
    });
    expect(sent.status).toBe(202);
    const available = await waitFor('image AVAILABLE', async () =>
      received.find(({ callback }) => callback.componentUuid === uuid && callback.phase === 'AVAILABLE'),
    );
    expect(available.traceparent?.split('-')[1]).toBe(TRACE_ID);

    const spans = exporter.getFinishedSpans();
    const done = spans.find((span) => span.name === 'harbor copy done');
    expect(done?.spanContext().traceId).toBe(TRACE_ID);
    const webhook = spans.find(
      (span) =>
        span.name === 'POST /webhooks/harbor' &&
        done!.links.some((link) => link.context.spanId === span.spanContext().spanId),
    );
    expect(webhook, 'a link to the webhook request').toBeDefined();
    expect(webhook!.spanContext().traceId).not.toBe(TRACE_ID);
  });

  it('opens a store whose images table has no traceparent yet, keeping its rows', async () => {
    const path = join(dir, 'old.sqlite');
    const before = await openStore(path);
    await sql`ALTER TABLE images DROP COLUMN traceparent`.execute(before);
    await sql`INSERT INTO images (component_uuid, step_id, owner, callback_url, reference, copy_state,
      phase, updated_at)
      VALUES ('c', 's', 'alice', 'http://broker/callbacks', 'r/i:1', 'COPYING', 'PREPARING',
      '2026-01-01T00:00:00Z')`.execute(before);
    await before.destroy();
    const after = await openStore(path);
    const rows = await after.selectFrom('images').select(['component_uuid', 'traceparent']).execute();
    await after.destroy();
    expect(rows).toEqual([{ component_uuid: 'c', traceparent: null }]);
  });
});
