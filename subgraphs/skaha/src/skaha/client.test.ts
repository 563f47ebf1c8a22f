import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SkahaEmulator } from '../../emulator/index.ts';
import { startSkahaEmulator } from '../../emulator/index.ts';
import { SkahaClient } from './client.ts';
import type { SkahaClientOptions } from './client.ts';
import { SkahaError } from './errors.ts';
import { parseEventsTable } from './events.ts';
import { sessionResources } from './quantities.ts';
import type { Session, SessionStatus } from './types.ts';

const HEADLESS = 'images.canfar.net/srcnet/hello-headless:1.0';
const NOTEBOOK = 'images.canfar.net/skaha/astroml:26.04';

let emulator: SkahaEmulator;
const client = (options: Partial<SkahaClientOptions> = {}) =>
  new SkahaClient({
    baseUrl: emulator.apiUrl,
    token: 'dev:alice',
    timeoutMs: 2000,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
let names = 0;
const uniqueName = (prefix = 'Step') => `${prefix}-${++names}-${Date.now().toString(36)}`;

async function waitForStatus(id: string, status: SessionStatus, api = client()): Promise<Session> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const session = await api.getSession(id);
    if (session.status === status) return session;
    if (Date.now() > deadline) throw new Error(`session ${id} is ${session.rawStatus}, not ${status}`);
    await sleep(20);
  }
}

async function rejection(promise: Promise<unknown>): Promise<SkahaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SkahaError);
  return error as SkahaError;
}

beforeAll(async () => {
  emulator = await startSkahaEmulator({
    timing: { headless: { startupMs: 80, runMs: 150 }, notebook: { startupMs: 80 } },
    terminatingMs: 100,
    expirySeconds: 3600,
  });
});
afterAll(() => emulator.close());
afterEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

describe('sessions', () => {
  it('creates a headless session and follows it to Completed, with logs and events', async () => {
    const api = client();
    const created = await api.createSession({
      name: 'MyRun-1',
      image: HEADLESS,
      cmd: 'echo',
      args: ['hello', 'world'],
      env: { GREETING: 'hi' },
    });
    expect(created.id).toMatch(/^[a-z0-9]{8}$/);
    expect(created).toMatchObject({ ids: [created.id], name: 'myrun-1', recovered: false });
    const first = await api.getSession(created.id);
    expect(first).toMatchObject({ name: 'myrun-1', type: 'headless', userid: 'alice', connectURL: '' });
    expect(['Pending', 'Running', 'Completed']).toContain(first.status);
    await waitForStatus(created.id, 'Completed', api);
    expect(await api.getSessionLogs(created.id)).toContain('echo hello world');
    const events = parseEventsTable(await api.getSessionEvents(created.id));
    expect(events.map((e) => e.reason)).toEqual(['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started']);
    expect(events[1]!.message).toBe(`Pulling image "${HEADLESS}"`);
    expect(emulator.stats().requests.bySession[created.id]?.createSession).toBe(1);
  });

  it('lists with filters, the public view and stats, and reports fixed resources', async () => {
    const api = client();
    const fixed = await api.createSession({
      name: uniqueName('nb'),
      image: NOTEBOOK,
      type: 'notebook',
      cores: 2,
      ram: 8,
    });
    const flexible = await api.createSession({ name: uniqueName('hl'), image: HEADLESS });
    await client({ token: 'dev:bob' }).createSession({ name: uniqueName('bob'), image: HEADLESS });
    const running = await waitForStatus(fixed.id, 'Running', api);
    expect(running.connectURL).toBe(
      `https://sessions.canfar.emulator/session/notebook/${fixed.id}/lab/tree/arc/home/alice?token=${fixed.id}`,
    );
    expect(running).toMatchObject({ isFixedResources: true, requestedRAM: '8.00', requestedCPUCores: '2' });
    expect(sessionResources(running)).toMatchObject({
      fixed: true,
      requestedRAMGB: 8,
      requestedCPUCores: 2,
      requestedGPUs: 0,
    });
    expect(sessionResources(running).cpuCoresInUse).toBeGreaterThan(0);
    const flexibleSession = await api.getSession(flexible.id);
    expect(flexibleSession.isFixedResources).toBe(false);
    expect(flexibleSession.requestedRAM).toBeUndefined();

    const notebooks = await api.listSessions({ type: 'notebook', status: 'running' });
    expect(notebooks.map((s) => s.id)).toEqual([fixed.id]);
    const interactive = await api.listSessions({ interactiveOnly: true });
    expect(interactive.every((s) => s.type !== 'headless')).toBe(true);
    const mine = await api.listSessions();
    expect(mine.every((s) => s.userid === 'alice')).toBe(true);
    expect(mine.map((s) => s.id)).toContain(flexible.id);
    const everyone = await api.listPublicSessions();
    expect(new Set(everyone.map((s) => s.userid))).toEqual(new Set(['alice', 'bob']));
    expect(Object.keys(everyone[0]!).sort()).toEqual(
      ['rawStatus', 'startTime', 'status', 'type', 'userid'].sort(),
    );
    const stats = await api.getStats();
    expect(stats.cores.requestedCPUCores).toBeGreaterThanOrEqual(2);
    expect(stats.ram.maxRAM).toEqual({ ram: '32G', withCPUCores: 8 });
  });

  it('renews, deletes through Terminating to 404, and tolerates deleting unknown ids', async () => {
    const api = client();
    const { id } = await api.createSession({ name: uniqueName(), image: NOTEBOOK, type: 'notebook' });
    const before = await waitForStatus(id, 'Running', api);
    await sleep(1100);
    await api.renewSession(id);
    const after = await api.getSession(id);
    expect(Date.parse(after.expiryTime!)).toBeGreaterThan(Date.parse(before.expiryTime!));
    await api.deleteSession(id);
    expect((await api.getSession(id)).status).toBe('Terminating');
    expect((await rejection(api.renewSession(id))).status).toBe(400);
    await sleep(200);
    const gone = await rejection(api.getSession(id));
    expect(gone).toMatchObject({ reason: 'status', status: 404 });
    expect(gone.message).toContain(`session ${id} not found`);
    await api.deleteSession('nosuchid');
  });

  it('reads context, images and repositories', async () => {
    const api = client();
    const context = await api.getContext();
    expect(context.cores.options).toContain(16);
    expect(context.maxInteractiveSessions).toBe(5);
    const headless = await api.listImages('headless');
    expect(headless.length).toBeGreaterThan(0);
    expect(
      headless.every((image) => image.types.includes('headless') && image.digest?.startsWith('sha256:')),
    ).toBe(true);
    expect((await api.listImages()).length).toBeGreaterThan(headless.length);
    expect((await rejection(api.listImages('bogus'))).status).toBe(400);
    expect(await api.listRepositories()).toEqual(['images.canfar.net']);
  });

  it('sends registry credentials for images outside the public cache', async () => {
    const api = client();
    const image = 'images.canfar.net/private/tool:1.0';
    const refused = await rejection(api.createSession({ name: uniqueName(), image }));
    expect(refused.status).toBe(400);
    expect(refused.message).toContain('x-skaha-registry-auth');
    const created = await api.createSession({
      name: uniqueName(),
      image,
      registryAuth: { username: 'robot$srcnet+skaha', secret: 's3cret' },
    });
    expect((await api.getSession(created.id)).image).toBe(image);
    await expect(
      api.createSession({ name: 'x', image, registryAuth: { username: 'a:b', secret: 'c' } }),
    ).rejects.toThrow(/registryAuth.username/);
  });

  it('refuses, before sending, what Skaha would silently mangle', async () => {
    const api = client();
    await expect(api.createSession({ name: 'a', image: HEADLESS, env: { A: 'x=y' } })).rejects.toThrow(
      /env A/,
    );
    await expect(api.createSession({ name: 'a', image: HEADLESS, env: { A: '' } })).rejects.toThrow(/env A/);
    await expect(api.createSession({ name: 'a', image: HEADLESS, args: ['two words'] })).rejects.toThrow(
      /args/,
    );
    await expect(
      api.createSession({ name: 'a', image: NOTEBOOK, type: 'notebook', cmd: 'python' }),
    ).rejects.toThrow(/headless/);
    await expect(api.createSession({ name: 'not valid', image: HEADLESS })).rejects.toThrow(
      /name must match/,
    );
    expect(emulator.stats().requests.total).toBe(0);
  });

  it('surfaces plain-text errors as SkahaError without retrying them', async () => {
    const error = await rejection(client().createSession({ name: 'x', image: 'docker.io/library/alpine' }));
    expect(error).toMatchObject({ reason: 'status', status: 400, retryable: false });
    expect(error.message).toContain('image not in a trusted repository');
    expect(emulator.stats().requests.byOperation.createSession).toBe(1);
    const unauthenticated = await rejection(client({ token: 'not-a-known-token' }).getContext());
    expect(unauthenticated.status).toBe(401);
  });

  it('asks a token function before every attempt', async () => {
    emulator.setFaults({ api: { operations: ['getContext'], error: { rate: 1, count: 1 } } });
    let asked = 0;
    await client({ token: () => `dev:user${++asked}` }).getContext();
    expect(asked).toBe(2);
  });
});

describe('retries', () => {
  it('retries 5xx with backoff and gives up after the configured attempts', async () => {
    emulator.setFaults({ api: { operations: ['listSessions'], error: { rate: 1, count: 2 } } });
    await client().listSessions();
    expect(emulator.stats().requests.byOperation.listSessions).toBe(3);
    emulator.setFaults({ api: { operations: ['listSessions'], error: { rate: 1, status: 502 } } });
    const error = await rejection(client({ retry: { attempts: 3, baseDelayMs: 5 } }).listSessions());
    expect(error).toMatchObject({ status: 502, retryable: true });
    expect(emulator.stats().requests.byOperation.listSessions).toBe(6);
  });

  it('waits at least Retry-After on 429, and hands back a Retry-After beyond its limit', async () => {
    emulator.setFaults({
      api: { operations: ['getContext'], rateLimit: { rate: 1, count: 1, retryAfterSeconds: 1 } },
    });
    const started = Date.now();
    await client().getContext();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    emulator.setFaults({
      api: { operations: ['getContext'], rateLimit: { rate: 1, retryAfterSeconds: 120 } },
    });
    const error = await rejection(client().getContext());
    expect(error).toMatchObject({ status: 429, retryAfterMs: 120_000 });
    expect(emulator.stats().requests.byOperation.getContext).toBe(3);
  });

  it('times out a hung request and retries it', async () => {
    emulator.setFaults({ api: { operations: ['getContext'], hang: { rate: 1, count: 1 } } });
    const started = Date.now();
    await client({ timeoutMs: 200 }).getContext();
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(emulator.stats().requests.byOperation.getContext).toBe(2);
    expect(emulator.stats().faults.hang).toBe(1);
  });

  it('reports a refused connection as never having reached the server', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const error = await rejection(
      client({ baseUrl: `http://127.0.0.1:${port}/skaha/v1` }).createSession({ name: 'a', image: HEADLESS }),
    );
    expect(error).toMatchObject({ reason: 'network', mayHaveReachedServer: false, outcomeUnknown: false });
  });
});

describe('create is never repeated blindly', () => {
  const sessionsNamed = async (name: string) =>
    (await client().listSessions()).filter((s) => s.name === name.toLowerCase());

  it('finds the session a lost answer created instead of creating another', async () => {
    emulator.setFaults({
      api: { operations: ['createSession'], hang: { rate: 1, count: 1, afterProcessing: true } },
    });
    const name = uniqueName('Lost');
    const created = await client({ timeoutMs: 300 }).createSession({ name, image: HEADLESS });
    expect(created.recovered).toBe(true);
    const stats = emulator.stats().requests.byOperation;
    expect(stats.createSession).toBe(1);
    expect(stats.listSessions).toBe(1);
    const found = await sessionsNamed(name);
    expect(found.map((s) => s.id)).toEqual([created.id]);
  });

  it('creates again when the lookup shows the failed create did nothing', async () => {
    emulator.setFaults({ api: { operations: ['createSession'], error: { rate: 1, count: 1 } } });
    const name = uniqueName('Retry');
    const created = await client().createSession({ name, image: HEADLESS });
    expect(created.recovered).toBe(false);
    expect(emulator.stats().requests.byOperation).toMatchObject({ createSession: 2, listSessions: 1 });
    expect(await sessionsNamed(name)).toHaveLength(1);
  });

  it('retries a 429 create without a lookup: nothing was done', async () => {
    emulator.setFaults({
      api: { operations: ['createSession'], rateLimit: { rate: 1, count: 1, retryAfterSeconds: 0 } },
    });
    await client().createSession({ name: uniqueName(), image: HEADLESS });
    expect(emulator.stats().requests.byOperation).toMatchObject({ createSession: 2 });
    expect(emulator.stats().requests.byOperation.listSessions).toBeUndefined();
  });

  it('stops, rather than risk a second session, when the lookup fails too', async () => {
    emulator.setFaults({
      api: {
        operations: ['createSession', 'listSessions'],
        hang: { rate: 1, count: 1, afterProcessing: true },
        error: { rate: 1 },
      },
    });
    const error = await rejection(
      client({ timeoutMs: 300, retry: { attempts: 2, baseDelayMs: 5 } }).createSession({
        name: uniqueName(),
        image: HEADLESS,
      }),
    );
    expect(error.reason).toBe('ambiguous');
    expect(error.message).toContain('not repeating it');
    expect(emulator.stats().requests.byOperation.createSession).toBe(1);
  });
});

describe('callback extension calls', () => {
  it('registers idempotently, lists, reads and unregisters', async () => {
    const api = client();
    expect(await api.supportsCallbacks()).toBe(true);
    const target = { url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars' };
    const id = await api.registerCallback(target);
    expect(await api.registerCallback(target)).toBe(id);
    expect(await api.listCallbacks()).toEqual([expect.objectContaining({ id, url: target.url })]);
    expect(JSON.stringify(await api.getCallback(id))).not.toContain(target.secret);
    expect(await client({ token: 'dev:bob' }).listCallbacks()).toEqual([]);
    await api.unregisterCallback(id);
    expect((await rejection(api.getCallback(id))).status).toBe(404);
    expect((await rejection(api.registerCallback({ url: target.url, secret: 'short' }))).message).toContain(
      'secret',
    );
  });
});

describe('against a Skaha that differs from the emulator', () => {
  let server: Server;
  let baseUrl: string;
  beforeAll(async () => {
    // Status strings and formats of older deployments, which the emulator does not produce.
    const sessions = [
      {
        id: 'aaaaaaa1',
        userid: 'alice',
        image: HEADLESS,
        type: 'headless',
        name: 'old',
        status: 'Succeeded',
      },
      {
        id: 'aaaaaaa2',
        userid: 'alice',
        image: HEADLESS,
        type: 'headless',
        name: 'old',
        status: 'Failed (DeadlineExceeded)',
      },
      { id: 'aaaaaaa3', userid: 'alice', image: HEADLESS, type: 'headless', name: 'old', status: 'Error' },
      {
        id: 'aaaaaaa4',
        userid: 'alice',
        image: HEADLESS,
        type: 'headless',
        name: 'old',
        status: 'Hibernating',
        requestedRAM: '16G',
        ramInUse: '101Mi',
        requestedGPUCores: '<none>',
      },
    ];
    server = createServer((request, response) => {
      if (request.method === 'POST') {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('abc12345\nabc12346\n');
      } else if (request.url?.startsWith('/skaha/v1/session')) {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(sessions));
      } else response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/skaha/v1`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('normalises old and unknown statuses and keeps the raw string', async () => {
    const sessions = await client({ baseUrl }).listSessions();
    expect(sessions.map((s) => [s.status, s.rawStatus])).toEqual([
      ['Completed', 'Succeeded'],
      ['Failed', 'Failed (DeadlineExceeded)'],
      ['Failed', 'Error'],
      ['Unknown', 'Hibernating'],
    ]);
    expect(sessionResources(sessions[3]!)).toEqual({
      fixed: true,
      requestedRAMGB: 16,
      ramInUseGB: (101 * 1024 ** 2) / 1e9,
    });
  });

  it('reads every id of a multi-line create answer, and sees no callback extension', async () => {
    const created = await client({ baseUrl }).createSession({ name: 'x', image: HEADLESS });
    expect(created).toMatchObject({ id: 'abc12345', ids: ['abc12345', 'abc12346'] });
    expect(await client({ baseUrl }).supportsCallbacks()).toBe(false);
  });
});
