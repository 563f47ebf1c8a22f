/**
 * Without Skaha callbacks, the worker watches all its sessions with one listing per interval:
 * 500 tracked sessions cost one `GET /session` per interval, never a per-session status request.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { BROKEN, BROKEN_MESSAGE, containerCommand, skahaStack, waitFor } from './stack.ts';

const COUNT = 500;

type Stack = Awaited<ReturnType<typeof skahaStack>>;
let stack: Stack;
let receiver: Server;
let receiverUrl: string;
const received: Ivoa.ComponentCallback[] = [];

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push(JSON.parse(body) as Ivoa.ComponentCallback);
      response.writeHead(202).end('{"outcome":"applied"}');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const address = receiver.address() as { port: number };
  receiverUrl = `http://127.0.0.1:${address.port}/callbacks`;
  stack = await skahaStack(
    { SKAHA_CALLBACKS: 'off', SKAHA_WATCH_FAST_MS: '100', SKAHA_WATCH_SLOW_MS: '250' },
    {
      cluster: { cores: 10_000, ramGB: 100_000 },
      timing: { headless: { startupMs: 100, runMs: null } },
    },
  );
});
afterAll(async () => {
  await stack.stop();
  await new Promise((done) => receiver.close(done));
});

const phasesOf = (uuid: string) => received.filter((c) => c.componentUuid === uuid).map((c) => c.phase);

describe('the batched watcher', () => {
  it('is used when callbacks are off', () => {
    expect(stack.worker.callbacks).toBe(false);
  });

  it(`reports ${COUNT} sessions starting with one listing per interval and no per-session poll`, async () => {
    const commands = Array.from({ length: COUNT }, () => containerCommand(receiverUrl));
    await Promise.all(commands.map((c) => stack.worker.tracker.handle(c)));
    await waitFor(
      'every session RUNNING',
      async () => (commands.every((c) => phasesOf(c.component.uuid).includes('RUNNING')) ? true : undefined),
      60_000,
    );
    const running = received.find(
      (c) => c.phase === 'RUNNING' && c.componentUuid === commands[0]!.component.uuid,
    );
    expect(running?.observation).toMatchObject({
      action: 'session-start',
      params: { type: 'headless', cores: 1, memoryGiB: 1 },
      outcome: 'ok',
    });

    // Steady state: every session Running. Headless sessions may end at any moment, so the watcher
    // keeps listing at its fast interval (100 ms here), one listing for all 500 each time.
    stack.skaha.resetStats();
    const listingsBefore = stack.worker.watcher.listings;
    const started = Date.now();
    await new Promise((done) => setTimeout(done, 2000));
    const elapsed = Date.now() - started;
    const { requests } = stack.skaha.stats();
    const listings = requests.byOperation.listSessions ?? 0;
    // At least two passes in the window, however busy the machine; never faster than the fast interval.
    expect(listings).toBeGreaterThanOrEqual(2);
    expect(listings).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 1);
    // The worker counts a listing when it sends it: one may have been under way when the window opened.
    expect(stack.worker.watcher.listings - listingsBefore).toBeGreaterThanOrEqual(listings - 1);
    expect(requests.total).toBe(listings);
    expect(requests.byOperation.getSession ?? 0).toBe(0);
  }, 90_000);

  it('reads why a session failed from its events, once, since a listing carries no message', async () => {
    stack.skaha.resetStats();
    const failing = containerCommand(receiverUrl, BROKEN);
    await stack.worker.tracker.handle(failing);
    await waitFor('FAILED', async () =>
      phasesOf(failing.component.uuid).includes('FAILED') ? true : undefined,
    );
    const failed = received.find((c) => c.componentUuid === failing.component.uuid && c.phase === 'FAILED');
    expect(failed?.message).toBe(BROKEN_MESSAGE);
    expect(stack.skaha.stats().requests.byOperation.getSessionEvents).toBe(1);
  });
});
