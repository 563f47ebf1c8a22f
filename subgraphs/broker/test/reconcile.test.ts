/**
 * Reconciliation with the workers: a worker that takes commands but whose callbacks never reach
 * the broker. The broker's periodic pass asks it for the last callback of each quiet component
 * and applies what it missed, once; a restarted broker's start-up pass does the same.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { verify } from '@srcnet/service-kit';
import { containerStep, testBroker, waitFor } from './harness.ts';

const SECRET = 'reconcile-test-secret';

/**
 * A worker whose callbacks are all lost: it answers commands with 202 and never calls back, but
 * reports through `/components/latest` the phase it set for each component it was asked to prepare.
 */
async function silentWorker() {
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const latest = new Map<string, Ivoa.ComponentCallback>();
  const asked: string[][] = [];
  const report = (stepId: string, componentUuid: string, phase: Ivoa.LifecyclePhase, sequence: number) =>
    latest.set(componentUuid, {
      eventId: `${componentUuid}:${sequence}`,
      stepId,
      componentUuid,
      phase,
      sequence,
      at: new Date().toISOString(),
    });
  const signed = (headers: Record<string, string | string[] | undefined>, body: string) =>
    verify(SECRET, headers, body).ok;
  app.post('/commands', async (request, reply) => {
    const body = request.body as string;
    if (!signed(request.headers, body)) return reply.code(401).send();
    const command = JSON.parse(body) as Ivoa.WorkerCommand;
    if (command.action === 'prepare') report(command.stepId, command.component.uuid, 'AVAILABLE', 1);
    return reply.code(202).send({ accepted: command.commandId });
  });
  app.post('/components/latest', async (request, reply) => {
    const body = request.body as string;
    if (!signed(request.headers, body)) return reply.code(401).send();
    const { components } = JSON.parse(body) as { components: string[] };
    asked.push(components);
    return { callbacks: components.flatMap((uuid) => latest.get(uuid) ?? []) };
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: address, asked, latest, report, close: () => app.close() };
}

type Worker = Awaited<ReturnType<typeof silentWorker>>;
let worker: Worker;
let dir: string;
beforeAll(async () => {
  worker = await silentWorker();
  dir = mkdtempSync(join(tmpdir(), 'broker-reconcile-'));
});
afterAll(async () => {
  await worker.close();
  rmSync(dir, { recursive: true, force: true });
});

const brokerWith = (seconds: string) =>
  testBroker({
    SQLITE_PATH: join(dir, 'broker.sqlite'),
    CALLBACK_SECRET: SECRET,
    SKAHA_WORKER_URL: worker.url,
    PREPAREDATA_WORKER_URL: worker.url,
    HARBOR_WORKER_URL: worker.url,
    BROKER_RECONCILE_SECONDS: seconds,
  });

async function recovered(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, name, value] of text.matchAll(/^srcnet_reconciled_callbacks_total\{worker="(\w+)"\} (\d+)/gm))
    counts[name!] = Number(value);
  return counts;
}

describe('reconciliation with the workers', () => {
  let stepId: string;

  it('applies, within the interval, the callbacks a worker generated but the broker never got, once', async () => {
    const broker = await brokerWith('0.5');
    try {
      const response = await fetch(`${broker.url}/direct`, {
        method: 'POST',
        redirect: 'manual',
        headers: { authorization: 'Bearer dev:alice', 'content-type': 'application/json' },
        body: JSON.stringify(containerStep()),
      });
      expect(response.status).toBe(303);
      stepId = ((await response.json()) as { meta: { uuid: string } }).meta.uuid;
      const started = Date.now();
      // The image (Harbor) first, then the session (Skaha), each recovered by a pass.
      await waitFor('the step AVAILABLE', async () =>
        (await broker.broker.steps([stepId]))[0]?.phase === 'AVAILABLE' ? true : undefined,
      );
      expect(Date.now() - started).toBeLessThan(4 * 500 + 1000);
      // Two more intervals: the components are asked about again and nothing changes twice.
      await new Promise((done) => setTimeout(done, 1200));
      const history = (await broker.broker.history([stepId])).get(stepId)!;
      const available = history.filter((entry) => entry.to === 'AVAILABLE');
      expect(available).toHaveLength(1);
      expect(available[0]!.cause).toBe('callback:reconcile');
      expect(await recovered(broker.url)).toEqual({ harbor: 1, skaha: 1 });
      expect(worker.asked.filter((components) => components.length > 0).length).toBeGreaterThan(2);
      // Each pass asked only about the quiet components: never more than the step's two.
      expect(Math.max(...worker.asked.map((components) => components.length))).toBeLessThanOrEqual(2);
    } finally {
      await broker.stop();
    }
  });

  it('catches up at start-up on what a worker reported while the broker was down', async () => {
    const step = await (async () => {
      const broker = await brokerWith('0');
      try {
        return (await broker.broker.steps([stepId]))[0]!;
      } finally {
        await broker.stop();
      }
    })();
    expect(step.phase).toBe('AVAILABLE');
    // While the broker is down the session's executable starts running; the callback is lost.
    const executable = step.document.executable!.meta!.uuid!;
    worker.report(stepId, executable, 'RUNNING', 2);
    const broker = await brokerWith('0');
    try {
      await waitFor('the step RUNNING', async () =>
        (await broker.broker.steps([stepId]))[0]?.phase === 'RUNNING' ? true : undefined,
      );
      const history = (await broker.broker.history([stepId])).get(stepId)!;
      expect(history.filter((entry) => entry.to === 'RUNNING').map((entry) => entry.cause)).toEqual([
        'callback:reconcile',
      ]);
      expect(await recovered(broker.url)).toEqual({ harbor: 1 });
    } finally {
      await broker.stop();
    }
  });
});
