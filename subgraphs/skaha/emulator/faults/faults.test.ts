import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatorStats, SkahaEmulator } from '../index.ts';
import { faultsFromEnv, optionsFromEnv, startSkahaEmulator } from '../index.ts';
import { checkFaults } from './faults.ts';

const HEADLESS = 'images.canfar.net/srcnet/hello-headless:1.0';
const AUTH = { authorization: 'Bearer dev:alice' };

let emulator: SkahaEmulator;
beforeAll(async () => {
  emulator = await startSkahaEmulator({ timing: { headless: { startupMs: 50, runMs: 50 } } });
});
afterAll(() => emulator.close());
afterEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${emulator.apiUrl}${path}`, { ...init, headers: { ...AUTH, ...init.headers } });
const create = (name: string, signal?: AbortSignal) =>
  api('/session', {
    method: 'POST',
    body: new URLSearchParams({ name, image: HEADLESS }),
    ...(signal ? { signal } : {}),
  });
const sessionsNamed = async (name: string) =>
  ((await (await api('/session')).json()) as { name: string }[]).filter((s) => s.name === name);

describe('API faults', () => {
  it('answers 5xx and 429 with Retry-After, without doing the work', async () => {
    emulator.setFaults({ api: { error: { rate: 1, status: 500 } } });
    const failed = await create('errored');
    expect(failed.status).toBe(500);
    expect(failed.headers.get('content-type')).toContain('text/plain');
    emulator.setFaults({ api: { rateLimit: { rate: 1, retryAfterSeconds: 7 } } });
    const limited = await create('limited');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    emulator.setFaults({});
    expect(await sessionsNamed('errored')).toEqual([]);
    expect(await sessionsNamed('limited')).toEqual([]);
    expect(emulator.stats().faults).toMatchObject({ error: 1, rateLimit: 1 });
  });

  it('hangs before or after doing the work', async () => {
    emulator.setFaults({ api: { operations: ['createSession'], hang: { rate: 1, count: 1 } } });
    await expect(create('hung-before', AbortSignal.timeout(200))).rejects.toThrow();
    emulator.setFaults({
      api: { operations: ['createSession'], hang: { rate: 1, count: 1, afterProcessing: true } },
    });
    await expect(create('hung-after', AbortSignal.timeout(200))).rejects.toThrow();
    expect(await sessionsNamed('hung-before')).toEqual([]);
    expect(await sessionsNamed('hung-after')).toHaveLength(1);
    expect(emulator.stats().faults).toMatchObject({ hang: 1, hangAfter: 1 });
  });

  it('slows answers, fires only for the chosen operations and only `count` times', async () => {
    emulator.setFaults({ api: { operations: ['getContext'], slow: { rate: 1, delayMs: 300 } } });
    let started = Date.now();
    expect((await api('/context')).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    started = Date.now();
    await api('/repository');
    expect(Date.now() - started).toBeLessThan(250);
    emulator.setFaults({ api: { error: { rate: 1, count: 2 } } });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await api('/repository')).status);
    expect(answers).toEqual([503, 503, 200, 200]);
  });

  it('applies a rate as a seeded fraction', async () => {
    emulator.setFaults({ api: { operations: ['getContext'], error: { rate: 0.5 } } });
    let failures = 0;
    for (let i = 0; i < 60; i++) if ((await api('/context')).status === 503) failures++;
    expect(failures).toBeGreaterThan(15);
    expect(failures).toBeLessThan(45);
  });

  it('is switched over HTTP too', async () => {
    const admin = `${emulator.url}/_emulator/faults`;
    const put = (body: unknown) =>
      fetch(admin, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await put({ api: { error: { rate: 2 } } })).status).toBe(400);
    expect((await put({ api: { operations: ['getContext'], error: { rate: 1 } } })).status).toBe(204);
    expect(await (await fetch(admin)).json()).toEqual({
      api: { operations: ['getContext'], error: { rate: 1 } },
    });
    expect((await api('/context')).status).toBe(503);
    expect((await put({})).status).toBe(204);
    expect((await api('/context')).status).toBe(200);
  });
});

describe('request counting', () => {
  it('counts by route, operation and session, programmatically and over HTTP, and resets', async () => {
    const id = (await (await create('counted')).text()).trim();
    await api(`/session/${id}`);
    await api(`/session/${id}`);
    await api(`/session/${id}?view=logs`);
    await api('/session');
    await api('/session?view=stats');
    await fetch(`${emulator.apiUrl}/context`);
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as EmulatorStats;
    expect(stats.requests).toEqual({
      total: 7,
      byRoute: {
        'POST /skaha/v1/session': 1,
        'GET /skaha/v1/session/{id}': 3,
        'GET /skaha/v1/session': 2,
        'GET /skaha/v1/context': 1,
      },
      byOperation: {
        createSession: 1,
        getSession: 2,
        getSessionLogs: 1,
        listSessions: 1,
        getStats: 1,
        getContext: 1,
      },
      bySession: { [id]: { createSession: 1, getSession: 2, getSessionLogs: 1 } },
    });
    expect(emulator.stats().requests).toEqual(stats.requests);
    expect((await fetch(`${emulator.url}/_emulator/stats`, { method: 'DELETE' })).status).toBe(204);
    expect(emulator.stats().requests.total).toBe(0);
  });
});

describe('configuration', () => {
  it('reads faults from SKAHA_FAULT_* variables', () => {
    expect(
      faultsFromEnv({
        SKAHA_FAULT_OPERATIONS: 'createSession, getSession',
        SKAHA_FAULT_ERROR_RATE: '0.1',
        SKAHA_FAULT_429_RATE: '0.2',
        SKAHA_FAULT_RETRY_AFTER_SECONDS: '3',
        SKAHA_FAULT_HANG_RATE: '0.05',
        SKAHA_FAULT_HANG_AFTER_PROCESSING: 'true',
        SKAHA_FAULT_SLOW_RATE: '1',
        SKAHA_FAULT_SLOW_MS: '250',
        SKAHA_FAULT_CALLBACK_DROP_RATE: '0.3',
        SKAHA_FAULT_CALLBACK_DELAY_RATE: '0.5',
        SKAHA_FAULT_CALLBACK_DELAY_MS: '100',
      }),
    ).toEqual({
      api: {
        operations: ['createSession', 'getSession'],
        error: { rate: 0.1, status: 503 },
        rateLimit: { rate: 0.2, retryAfterSeconds: 3 },
        hang: { rate: 0.05, afterProcessing: true },
        slow: { rate: 1, delayMs: 250 },
      },
      callbacks: { drop: { rate: 0.3 }, delay: { rate: 0.5, delayMs: 100, jitterMs: 0 } },
    });
    expect(() => faultsFromEnv({ SKAHA_FAULT_ERROR_RATE: '1.5' })).toThrow(/SKAHA_FAULT_ERROR_RATE/);
    expect(() => faultsFromEnv({ SKAHA_FAULT_OPERATIONS: 'launch' })).toThrow(/launch is not one of/);
    expect(() => checkFaults({ api: { error: { rate: 1, status: 404 } } })).toThrow(
      /api.error.status must be a 5xx/,
    );
    expect(() => checkFaults({ callbacks: { delay: { rate: 1, delayMs: -1 } } })).toThrow(
      /callbacks.delay.delayMs/,
    );
  });

  it('reads emulator options from SKAHA_EMULATOR_* variables', () => {
    const options = optionsFromEnv({
      SKAHA_EMULATOR_TOKENS: 'tok1=alice, tok2=bob',
      SKAHA_EMULATOR_STARTUP_MS: '10',
      SKAHA_EMULATOR_HEADLESS_RUN_MS: '20',
      SKAHA_EMULATOR_CLUSTER_CORES: '4',
      SKAHA_EMULATOR_FAILURE_RATE: '0.25',
      SKAHA_EMULATOR_PERSIST_USER_CALLBACKS: 'true',
      SKAHA_FAULT_429_RATE: '1',
    });
    expect(options).toMatchObject({
      port: 4102,
      tokens: { tok1: 'alice', tok2: 'bob' },
      cluster: { cores: 4 },
      failureRate: 0.25,
      callbacks: { persistUserRegistrations: true },
      faults: { api: { rateLimit: { rate: 1, retryAfterSeconds: 1 } } },
    });
    expect(options.timing?.headless).toEqual({ startupMs: 10, runMs: 20 });
    expect(options.timing?.notebook).toEqual({ startupMs: 10 });
    expect(() => optionsFromEnv({ SKAHA_EMULATOR_FAILURE_RATE: '2' })).toThrow(
      /SKAHA_EMULATOR_FAILURE_RATE=2/,
    );
    expect(() => optionsFromEnv({ SKAHA_EMULATOR_TOKENS: 'lonely' })).toThrow(/token=user/);
  });
});
