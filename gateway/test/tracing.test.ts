/**
 * One trace from the client to a worker and back: the gateway, the broker's GraphQL mutation, the
 * durable job that sends the worker its command, the worker's call to Skaha, the worker's callback
 * from its outbox and the broker's handling of it, all in-process, with every log line written on
 * the way naming that trace; and the session's later start, which Skaha announces in a callback of
 * its own, joining the same trace.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, traceLogFields } from '@srcnet/service-kit';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@srcnet/service-kit/tracing/testing';
import { loadConfig as brokerConfig } from '../../subgraphs/broker/src/config.ts';
import { startBroker, type RunningBroker } from '../../subgraphs/broker/src/server.ts';
import { startSkahaEmulator } from '../../subgraphs/skaha/emulator/index.ts';
import { loadConfig as skahaConfig } from '../../subgraphs/skaha/src/config.ts';
import { startSkahaWorker, type RunningSkahaWorker } from '../../subgraphs/skaha/src/worker.ts';
import { loadConfig as gatewayConfig } from '../src/config.ts';
import { startGateway, type RunningGateway } from '../src/server.ts';

const exporter = new InMemorySpanExporter();
const lines: Record<string, unknown>[] = [];
const capture = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let dir: string;
let skaha: Awaited<ReturnType<typeof startSkahaEmulator>>;
let worker: RunningSkahaWorker;
let broker: RunningBroker;
let gateway: RunningGateway;

beforeAll(async () => {
  startTracing({ serviceName: 'tracing-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
  dir = mkdtempSync(join(tmpdir(), 'tracing-'));
  skaha = await startSkahaEmulator({ timing: { notebook: { startupMs: 100 } }, tickMs: 5 });
  worker = await startSkahaWorker(
    skahaConfig({ PORT: '0', SKAHA_API_URL: skaha.apiUrl, SKAHA_SQLITE_PATH: join(dir, 'skaha.sqlite') }),
    { logger: pino({ level: 'info', mixin: traceLogFields }, capture) },
  );
  broker = await startBroker(
    brokerConfig({
      BROKER_PORT: '0',
      SQLITE_PATH: join(dir, 'broker.sqlite'),
      PREPARATION_ESTIMATE: 'zero',
      BOOKING_BLOCK_SECONDS: '1',
      SKAHA_WORKER_URL: worker.url,
    }),
    { logger: { level: 'info', stream: capture } },
  );
  const config = gatewayConfig({ GATEWAY_PORT: '0' });
  gateway = await startGateway(
    {
      ...config,
      subgraphUrls: {
        ...config.subgraphUrls,
        broker: `${broker.url}/graphql`,
        skaha: `${worker.url}/graphql`,
      },
    },
    {
      // At debug the runtime writes lines while it handles each request, a success included.
      logging: 'debug',
      logger: pino({ name: 'gateway', level: 'debug', mixin: traceLogFields }, capture),
      fanout: false,
    },
  );
});

afterAll(async () => {
  await gateway?.close();
  await broker?.close();
  await worker?.close();
  await skaha?.close();
  rmSync(dir, { recursive: true, force: true });
});

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

const named = (spans: ReadableSpan[], scope: string, name: string) =>
  spans.filter((span) => span.instrumentationScope.name === scope && span.name === name);

/** Runs executeDirect for a notebook through the gateway; the step and the trace of the request. */
async function executeNotebook(): Promise<{ stepId: string; traceId: string }> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer dev:alice' },
    body: JSON.stringify({
      query: 'mutation ($request: ExecutionRequestInput!) { executeDirect(request: $request) { id phase } }',
      variables: {
        request: {
          executable: {
            kind: `${KIND}executable/jupyter-notebook.yaml`,
            location: 'https://example.org/n.ipynb',
          },
          schedule: { requested: { duration: 'PT10M' } },
        },
      },
    }),
  });
  const body = (await response.json()) as { data?: { executeDirect: { id: string } }; errors?: unknown };
  expect(body.errors).toBeUndefined();
  const stepId = body.data!.executeDirect.id;
  const traceId = await waitFor('the gateway request span', () => {
    const ids = new Set(
      named(exporter.getFinishedSpans(), 'gateway', 'POST /graphql').map(
        (span) => span.spanContext().traceId,
      ),
    );
    // The step's trace: the one the broker's command for it was sent in.
    return lines.find(
      (line) => line.msg === 'command accepted' && line.step === stepId && ids.has(line.trace_id as string),
    )?.trace_id as string | undefined;
  });
  return { stepId, traceId };
}

describe('tracing', () => {
  it('follows a step from the gateway through the broker to the Skaha worker and back, in one trace', async () => {
    const { stepId, traceId } = await executeNotebook();
    const entry = named(exporter.getFinishedSpans(), 'gateway', 'POST /graphql').find(
      (span) => span.spanContext().traceId === traceId,
    );
    expect(entry).toBeDefined();
    const inTrace = () =>
      exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);

    const expected = [
      ['gateway', 'subgraph broker'],
      ['broker', 'POST /graphql'],
      ['skaha', 'POST /commands'],
      ['skaha', 'skaha createSession'],
      ['skaha', 'POST /callbacks'],
      // The worker's callback reaching the broker closes the loop.
      ['broker', 'POST /callbacks'],
    ] as const;
    const missing = () => expected.filter(([scope, name]) => named(inTrace(), scope, name).length === 0);
    await waitFor('every hop in the trace', () => (missing().length === 0 ? true : undefined)).catch(() => {
      throw new Error(
        `missing ${JSON.stringify(missing())}; the trace has ${inTrace()
          .map((span) => `${span.instrumentationScope.name} ${span.name}`)
          .join(', ')}`,
      );
    });
    const spans = inTrace();
    const one = (scope: string, name: string) => named(spans, scope, name)[0]!;
    const subgraph = one('gateway', 'subgraph broker');
    const mutation = one('broker', 'POST /graphql');
    const job = spans.find(
      (span) => span.instrumentationScope.name === 'broker' && span.name.startsWith('job '),
    );
    expect(job, 'a broker job span').toBeDefined();
    const command = one('skaha', 'POST /commands');
    const backend = one('skaha', 'skaha createSession');
    const callback = one('skaha', 'POST /callbacks');
    const handled = one('broker', 'POST /callbacks');
    // Each hop is a child of the one before it, across processes' worth of propagation.
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
    expect(parentOf(subgraph)).toBe(entry!.spanContext().spanId);
    expect(parentOf(mutation)).toBe(subgraph.spanContext().spanId);
    expect(parentOf(handled)).toBe(callback.spanContext().spanId);
    expect(spans.filter((span) => span.name === 'skaha createSession')).toContain(backend);
    expect(command.spanContext().traceId).toBe(traceId);

    // Log lines along the way: the broker's request lines, the worker's, all naming the trace.
    const logged = lines.filter((line) => line.trace_id === traceId);
    const messages = logged.map((line) => line.msg);
    expect(messages).toContain('command accepted');
    expect(logged.filter((line) => line.msg === 'incoming request').length).toBeGreaterThanOrEqual(2);
    const commandLine = logged.find((line) => line.msg === 'command accepted')!;
    expect(commandLine.step).toBe(stepId);
    expect(commandLine.span_id).toBe(command.spanContext().spanId);
    // Every broker request line about this step's callback is in the trace.
    const callbackLines = lines.filter(
      (line) =>
        line.msg === 'incoming request' && (line.req as { url?: string } | undefined)?.url === '/callbacks',
    );
    expect(callbackLines.length).toBeGreaterThan(0);
    expect(callbackLines.some((line) => line.trace_id === traceId)).toBe(true);
  }, 30_000);

  it("keeps a session's later changes, announced by Skaha's own callbacks, in the step's trace", async () => {
    expect(worker.callbacks, 'the emulator offers the callback extension').toBe(true);
    const { traceId } = await executeNotebook();
    const inTrace = () =>
      exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

    // Skaha's callback for the session's start, handled in the command's trace ...
    const started = await waitFor('the session start in the trace', () =>
      named(inTrace(), 'skaha', 'skaha session Running').at(0),
    );
    // ... and linked to the notification it arrived in, a trace of its own.
    const notifications = named(exporter.getFinishedSpans(), 'skaha', 'POST /skaha-callbacks');
    const arrivedIn = notifications.find((span) =>
      started.links.some((link) => link.context.spanId === span.spanContext().spanId),
    );
    expect(arrivedIn, 'a link to the Skaha callback request').toBeDefined();
    expect(arrivedIn!.spanContext().traceId).not.toBe(traceId);

    // The worker's callback to the broker that it led to, and the broker's handling of it.
    const delivered = await waitFor('the callback reporting the start', () =>
      named(inTrace(), 'skaha', 'POST /callbacks').find(
        (span) => parentOf(span) === started.spanContext().spanId,
      ),
    );
    const handled = await waitFor('the broker handling that callback', () =>
      named(inTrace(), 'broker', 'POST /callbacks').find(
        (span) => parentOf(span) === delivered.spanContext().spanId,
      ),
    );
    expect(handled.attributes['http.response.status_code']).toBeLessThan(300);
    const brokerLines = lines.filter((line) => line.span_id === handled.spanContext().spanId);
    expect(brokerLines.map((line) => line.msg)).toContain('incoming request');
    expect(brokerLines.every((line) => line.trace_id === traceId)).toBe(true);

    // The gateway's lines written while it handled the request name the trace too.
    const gatewayLines = lines.filter((line) => line.name === 'gateway' && line.trace_id === traceId);
    expect(gatewayLines.map((line) => line.msg)).toContain('[useFetchDebug] Request');
  }, 30_000);
});
