import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { readStageCallback } from '../../src/preparedata/callbacks.ts';
import { PrepareDataClient } from '../../src/preparedata/client.ts';
import type { StageCallbackEvent } from '../../src/preparedata/types.ts';
import type { PrepareDataEmulator, PrepareDataEmulatorOptions } from '../index.ts';
import { startPrepareDataEmulator } from '../index.ts';
import { eventually, testWorld } from '../testing/fixtures.ts';
import type { CallbackReceiver } from '../testing/receiver.ts';
import { startCallbackReceiver } from '../testing/receiver.ts';

const SECRET = 'a-callback-secret-of-some-length';

let emulator: PrepareDataEmulator;
let receiver: CallbackReceiver;

async function setup(
  options: PrepareDataEmulatorOptions = {},
  respond?: (attempt: number, body: string) => number,
): Promise<PrepareDataClient> {
  receiver = await startCallbackReceiver(respond);
  emulator = await startPrepareDataEmulator(
    testWorld({ ...options, callbacks: { baseDelayMs: 20, maxDelayMs: 100, ...options.callbacks } }),
  );
  return new PrepareDataClient({ baseUrl: emulator.url, token: 'dev:alice' });
}

afterEach(async () => {
  await emulator?.close();
  await receiver?.close();
});

/** Verified events of the deliveries the receiver accepted, in arrival order. */
function events(): StageCallbackEvent[] {
  return receiver.received
    .filter((r) => r.status === 200)
    .map((r) => {
      const result = readStageCallback(SECRET, r.headers, r.body);
      if (!result.ok) throw new Error(result.reason);
      return result.event;
    });
}

const hasState = (state: string) => () => events().some((event) => event.state === state);

describe('callbacks', () => {
  it('sends signed, ordered state and progress events; no status polls needed', async () => {
    const client = await setup({ callbacks: { minIntervalMs: 200 } });
    const { jobId } = await client.submit({
      dids: ['test:medium'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor(hasState('COMPLETED'));
    const received = events();
    expect(received.map((event) => event.sequence)).toEqual(received.map((_, i) => i + 1));
    expect(new Set(received.map((event) => event.eventId)).size).toBe(received.length);
    expect(received.every((event) => event.jobId === jobId)).toBe(true);
    const states = received.filter((event) => event.type === 'state').map((event) => event.state);
    expect(states).toEqual(['QUEUED', 'STAGING', 'COMPLETED']);
    const progress = received.filter((event) => event.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    const bytes = received.map((event) => event.bytesDone);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(received.at(-1)).toMatchObject({ bytesDone: 50_000_000, bytesTotal: 50_000_000 });
    expect(emulator.stats().requests.byJob[jobId]).toEqual({ submit: 1 });
    // The receiver records a delivery just before the emulator sees its answer.
    await eventually(
      () => emulator.stats().callbacks,
      (stats) => stats.delivered === received.length,
    );
    expect(emulator.stats().callbacks.failedAttempts).toBe(0);
    // A tampered body does not verify.
    const first = receiver.received[0]!;
    expect(readStageCallback(SECRET, first.headers, first.body.replace('QUEUED', 'FAILED'))).toMatchObject({
      ok: false,
    });
  });

  it('throttles progress by interval', async () => {
    const client = await setup({ callbacks: { minIntervalMs: 400 } });
    await client.submit({
      dids: ['test:medium'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor(hasState('COMPLETED'));
    const received = events();
    // One second of transfer at most every 400 ms, against a 20 ms clock.
    const progress = received.filter((event) => event.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < received.length; i++) {
      if (received[i]!.type !== 'progress') continue;
      expect(Date.parse(received[i]!.time) - Date.parse(received[i - 1]!.time)).toBeGreaterThanOrEqual(400);
    }
    expect(emulator.stats().callbacks.throttled).toBeGreaterThan(10);
  });

  it('throttles progress by percent step', async () => {
    const client = await setup({ callbacks: { minIntervalMs: 0, minPercentStep: 30 } });
    await client.submit({
      dids: ['test:medium'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor(hasState('COMPLETED'));
    const received = events();
    const progress = received.filter((event) => event.type === 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < received.length; i++)
      if (received[i]!.type === 'progress')
        expect(received[i]!.bytesDone - received[i - 1]!.bytesDone).toBeGreaterThanOrEqual(15_000_000);
  });

  it('uses a client-wide registration until it is removed', async () => {
    const client = await setup();
    await client.registerCallback({ url: receiver.url, secret: SECRET });
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    await receiver.waitFor(hasState('COMPLETED'));
    expect(events().every((event) => event.jobId === jobId)).toBe(true);
    await client.unregisterCallback();
    const count = receiver.received.length;
    await client.submit({ dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 });
    await sleep(300);
    expect(receiver.received.length).toBe(count);
  });

  it('retries failed deliveries with backoff and keeps the order', async () => {
    const client = await setup({}, (attempt) => (attempt <= 2 ? 503 : 200));
    await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor(hasState('COMPLETED'));
    const [a, b, c] = receiver.received;
    expect([a!.status, b!.status, c!.status]).toEqual([503, 503, 200]);
    expect(new Set([a, b, c].map((r) => r!.headers['x-srcnet-event-id'])).size).toBe(1);
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(20);
    expect(events().map((event) => event.sequence)).toEqual(events().map((_, i) => i + 1));
    expect(emulator.stats().callbacks).toMatchObject({ failedAttempts: 2, givenUp: 0 });
  });

  it('does not retry an event the receiver refuses with a 4xx', async () => {
    const client = await setup({}, () => 401);
    await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });
    await eventually(
      () => emulator.stats().callbacks,
      (stats) => stats.rejected >= 3,
    );
    await sleep(100);
    expect(emulator.stats().callbacks.failedAttempts).toBe(0);
    expect(receiver.received.length).toBe(emulator.stats().callbacks.rejected);
  });
});

describe('callback faults', () => {
  const submit = (client: PrepareDataClient) =>
    client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
      callback: { url: receiver.url, secret: SECRET },
    });

  it('drops notifications', async () => {
    const client = await setup({ faults: { callbacks: { drop: { rate: 1 } } } });
    const { jobId } = await submit(client);
    await eventually(
      () => client.getJob(jobId),
      (job) => job.state === 'COMPLETED',
    );
    await sleep(100);
    expect(receiver.received).toHaveLength(0);
    expect(emulator.stats().callbacks.dropped).toBe(emulator.stats().callbacks.generated);
  });

  it('duplicates a notification with the same event id', async () => {
    const client = await setup({ faults: { callbacks: { duplicate: { rate: 1, count: 1 } } } });
    await submit(client);
    await receiver.waitFor(hasState('COMPLETED'));
    const ids = receiver.received.map((r) => r.headers['x-srcnet-event-id']);
    expect(ids[0]).toBe(ids[1]);
    expect(new Set(ids).size).toBe(ids.length - 1);
    expect(emulator.stats().callbacks.duplicated).toBe(1);
  });

  it('reorders a notification behind its successor', async () => {
    const client = await setup({ faults: { callbacks: { reorder: { rate: 1, count: 1 } } } });
    await submit(client);
    await receiver.waitFor(() => events().length >= 3);
    const sequences = events().map((event) => event.sequence);
    expect(sequences.slice(0, 2)).toEqual([2, 1]);
    expect(emulator.stats().callbacks.reordered).toBe(1);
  });

  it('delays notifications', async () => {
    const client = await setup({ faults: { callbacks: { delay: { rate: 1, delayMs: 300 } } } });
    const started = Date.now();
    await submit(client);
    await receiver.waitFor((received) => received.length >= 1);
    expect(receiver.received[0]!.at - started).toBeGreaterThanOrEqual(290);
  });

  it('loses pending deliveries on restart but keeps counting sequences', async () => {
    const client = await setup({ callbacks: { baseDelayMs: 5000, maxDelayMs: 5000 } }, () => 503);
    const { jobId } = await submit(client);
    await receiver.waitFor((received) => received.length >= 1);
    // Completed before the restart, so that the only event after it is the release.
    await eventually(
      () => client.getJob(jobId),
      (job) => job.state === 'COMPLETED',
    );
    await emulator.restart();
    expect(emulator.stats().callbacks.lost).toBeGreaterThanOrEqual(1);
    const before = receiver.received.length;
    await client.release(jobId);
    await receiver.waitFor((received) => received.length > before);
    const last = JSON.parse(receiver.received.at(-1)!.body) as { sequence: number; state: string };
    expect(last.state).toBe('RELEASED');
    expect(last.sequence).toBeGreaterThan(1);
  });
});
