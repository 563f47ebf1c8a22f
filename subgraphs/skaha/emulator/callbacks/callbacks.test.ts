import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SIGNATURE_HEADER } from '@srcnet/service-kit';
import { readSessionCallback } from '../../src/skaha/callbacks.ts';
import { SkahaClient } from '../../src/skaha/client.ts';
import { SkahaError } from '../../src/skaha/errors.ts';
import type { SkahaEmulator, SkahaEmulatorOptions } from '../index.ts';
import { startSkahaEmulator } from '../index.ts';
import type { CallbackReceiver, Received } from '../testing/receiver.ts';
import { startReceiver } from '../testing/receiver.ts';

const HEADLESS = 'images.canfar.net/srcnet/hello-headless:1.0';
const NOTEBOOK = 'images.canfar.net/skaha/astroml:26.04';
const SECRET = 'callback-secret-0123456789';

let emulator: SkahaEmulator | undefined;
let receiver: CallbackReceiver | undefined;
afterEach(async () => {
  await emulator?.close();
  await receiver?.close();
  emulator = undefined;
  receiver = undefined;
});

async function setup(options: SkahaEmulatorOptions = {}) {
  receiver = await startReceiver();
  emulator = await startSkahaEmulator({
    timing: { headless: { startupMs: 40, runMs: 80 }, notebook: { startupMs: 40 } },
    terminatingMs: 60,
    ...options,
    callbacks: {
      baseDelayMs: 20,
      maxDelayMs: 100,
      timeoutMs: 1000,
      reorderHoldMs: 300,
      ...options.callbacks,
    },
  });
  const client = new SkahaClient({
    baseUrl: emulator.apiUrl,
    token: 'dev:alice',
    retry: { baseDelayMs: 10, attempts: 4 },
  });
  return { emulator, receiver, client };
}

const statuses = (received: Received[], session?: string) =>
  received.filter((r) => !session || r.json.sessionId === session).map((r) => r.json.status);

describe('notifications', () => {
  it('signs every status change of a session registered at create, in order with sequence numbers', async () => {
    const { receiver, client } = await setup();
    const { id } = await client.createSession({
      name: 'Signed',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.length === 3);
    const events = receiver.received.map((r) => {
      const reading = readSessionCallback(SECRET, r.headers, r.body);
      if (!reading.ok) throw new Error(reading.reason);
      return reading.event;
    });
    expect(events.map((e) => [e.sequence, e.previousStatus, e.status])).toEqual([
      [1, null, 'Pending'],
      [2, 'Pending', 'Running'],
      [3, 'Running', 'Completed'],
    ]);
    for (const event of events) {
      expect(event).toMatchObject({ type: 'session.status', sessionId: id, name: 'signed', userid: 'alice' });
      expect(event.session?.status).toBe(event.status);
    }
    expect(new Set(events.map((e) => e.eventId)).size).toBe(3);
    const forged = readSessionCallback(
      'another-secret-of-length',
      receiver.received[0]!.headers,
      receiver.received[0]!.body,
    );
    expect(forged).toEqual({ ok: false, reason: `${SIGNATURE_HEADER} does not match the body` });
    await client.deleteSession(id);
    await receiver.waitFor((r) => r.length === 5);
    expect(receiver.received.slice(3).map((r) => [r.json.type, r.json.status, r.json.sequence])).toEqual([
      ['session.status', 'Terminating', 4],
      ['session.deleted', 'Deleted', 5],
    ]);
    expect(receiver.received[4]!.json.session).toBeUndefined();
    expect(emulator!.stats().callbacks.registrations).toBe(0);
  });

  it('sends a user-wide registration the events of every later session, once per URL', async () => {
    const { receiver, client } = await setup();
    const registration = await client.registerCallback({ url: receiver.url, secret: SECRET });
    const one = await client.createSession({ name: 'one', image: HEADLESS });
    const two = await client.createSession({
      name: 'two',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await new SkahaClient({ baseUrl: emulator!.apiUrl, token: 'dev:bob' }).createSession({
      name: 'bobs',
      image: HEADLESS,
    });
    await receiver.waitFor((r) => r.filter((x) => x.json.status === 'Completed').length === 2);
    await sleep(100);
    expect(statuses(receiver.received, one.id)).toEqual(['Pending', 'Running', 'Completed']);
    expect(statuses(receiver.received, two.id)).toEqual(['Pending', 'Running', 'Completed']);
    expect(receiver.received.every((r) => r.json.userid === 'alice')).toBe(true);
    await client.unregisterCallback(registration);
    await client.createSession({ name: 'three', image: HEADLESS });
    await sleep(200);
    expect(receiver.received).toHaveLength(6);
  });

  it('refuses bad registrations without creating anything', async () => {
    const { client, receiver } = await setup();
    const refused = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (e: SkahaError) => [e.status, e.message],
      );
    expect(await refused(client.registerCallback({ url: 'ftp://x/y', secret: SECRET }))).toEqual([
      400,
      expect.stringContaining('http or https'),
    ]);
    expect(
      await refused(client.registerCallback({ url: receiver.url, secret: SECRET, session: 'nosuchid' })),
    ).toEqual([404, expect.stringContaining('session nosuchid not found')]);
    const create = client.createSession({
      name: 'x',
      image: HEADLESS,
      callback: { url: receiver.url, secret: 'short' },
    });
    expect(await refused(create)).toEqual([400, expect.stringContaining('secret must be at least 16')]);
    expect(await client.listSessions()).toEqual([]);
  });
});

describe('delivery', () => {
  it('retries a failing receiver with backoff, keeping the event id and the order', async () => {
    const { receiver, client } = await setup();
    receiver.failNext(3);
    const { id } = await client.createSession({
      name: 'retry',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.filter((x) => x.answered < 300).length === 3);
    const attempts = receiver.received.filter((r) => r.json.sequence === 1);
    expect(attempts.map((r) => r.answered)).toEqual([503, 503, 503, 204]);
    expect(new Set(attempts.map((r) => r.headers['x-srcnet-event-id'])).size).toBe(1);
    expect(receiver.accepted().map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(receiver.accepted().every((e) => e.sessionId === id)).toBe(true);
    await vi.waitFor(() =>
      expect(emulator!.stats().callbacks).toMatchObject({
        delivered: 3,
        failedAttempts: 3,
        attempts: 6,
        abandoned: 0,
      }),
    );
  });

  it('gives up on a 4xx answer, and removes the registration on 410 Gone', async () => {
    const { receiver, client } = await setup({ callbacks: { attempts: 3 } });
    receiver.failNext(1, 400);
    await client.createSession({
      name: 'bad',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.length === 3);
    expect(receiver.received.map((r) => r.answered)).toEqual([400, 204, 204]);
    await vi.waitFor(() => expect(emulator!.stats().callbacks.abandoned).toBe(1));
    const registration = await client.registerCallback({ url: receiver.url, secret: SECRET });
    receiver.failNext(1, 410);
    await client.createSession({ name: 'gone', image: HEADLESS });
    await receiver.waitFor((r) => r.length === 4);
    await sleep(200);
    expect(receiver.received).toHaveLength(4);
    expect(((await client.getCallback(registration).catch((e: SkahaError) => e)) as SkahaError).status).toBe(
      404,
    );
  });
});

describe('callback faults', () => {
  it('drops, duplicates and delays as switched', async () => {
    const { receiver, client } = await setup({ faults: { callbacks: { drop: { rate: 1 } } } });
    await client.createSession({
      name: 'dropped',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await sleep(300);
    expect(receiver.received).toHaveLength(0);
    expect(emulator!.stats().faults.drop).toBe(3);

    emulator!.setFaults({ callbacks: { duplicate: { rate: 1 } } });
    await client.createSession({
      name: 'doubled',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.length === 6);
    const ids = receiver.received.map((r) => r.json.eventId);
    expect(ids[0]).toBe(ids[1]);
    expect(new Set(ids).size).toBe(3);

    emulator!.setFaults({ callbacks: { delay: { rate: 1, count: 1, delayMs: 400 } } });
    const started = Date.now();
    await client.createSession({
      name: 'late',
      image: NOTEBOOK,
      type: 'notebook',
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.length >= 7);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(emulator!.stats().faults.delay).toBe(1);
  });

  it('reorders a session’s events, which the sequence numbers expose', async () => {
    const { receiver, client } = await setup({ faults: { callbacks: { reorder: { rate: 1, count: 1 } } } });
    await client.createSession({
      name: 'swapped',
      image: HEADLESS,
      callback: { url: receiver.url, secret: SECRET },
    });
    await receiver.waitFor((r) => r.length === 3);
    expect(receiver.received.map((r) => r.json.sequence)).toEqual([2, 1, 3]);
    expect(emulator!.stats().faults.reorder).toBe(1);
  });
});

describe('restart', () => {
  it('forgets user-wide registrations and in-flight deliveries, keeps per-session ones and their numbering', async () => {
    const { receiver, client, emulator } = await setup();
    const userWide = await client.registerCallback({ url: receiver.url, secret: SECRET });
    const other = await startReceiver();
    receiver.failNext(1000);
    try {
      const { id } = await client.createSession({
        name: 'survivor',
        image: NOTEBOOK,
        type: 'notebook',
        callback: { url: other.url, secret: SECRET },
      });
      await other.waitFor((r) => r.length === 2);
      await receiver.waitFor((r) => r.length >= 2);
      expect(emulator.stats().callbacks.pending).toBeGreaterThan(0);
      await emulator.restart();
      expect(emulator.stats().callbacks.pending).toBe(0);
      expect(((await client.getCallback(userWide).catch((e: SkahaError) => e)) as SkahaError).status).toBe(
        404,
      );
      expect((await client.listCallbacks()).map((r) => r.session)).toEqual([id]);
      const before = other.received[0]!.json.instance;
      await client.deleteSession(id);
      await other.waitFor((r) => r.length === 4);
      expect(other.received.map((r) => r.json.sequence)).toEqual([1, 2, 3, 4]);
      expect(other.received[2]!.json.instance).not.toBe(before);
    } finally {
      await other.close();
    }
  });

  it('is unreachable during downtime and announces changes made meanwhile', async () => {
    const { receiver, client, emulator } = await setup({
      timing: { headless: { startupMs: 150, runMs: 100 } },
      callbacks: { persistUserRegistrations: true },
    });
    await client.registerCallback({ url: receiver.url, secret: SECRET });
    const { id } = await client.createSession({ name: 'meanwhile', image: HEADLESS });
    await receiver.waitFor((r) => r.length === 1);
    const restarting = emulator.restart({ downtimeMs: 400 });
    await sleep(100);
    const refused = await client.listSessions({}, { timeoutMs: 200 }).catch((e: SkahaError) => e);
    expect(refused).toBeInstanceOf(SkahaError);
    await restarting;
    await receiver.waitFor((r) => r.some((x) => x.json.status === 'Completed'));
    const last = receiver.received.at(-1)!.json;
    expect(last).toMatchObject({
      sessionId: id,
      previousStatus: 'Pending',
      status: 'Completed',
      sequence: 2,
    });
    expect(last.message).toContain('restarting');
    expect((await client.listCallbacks()).length).toBe(1);
  });
});
