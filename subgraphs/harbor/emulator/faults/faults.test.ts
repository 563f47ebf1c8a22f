import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HarborClient } from '../../src/harbor/client.ts';
import type { EmulatorStats, HarborEmulator } from '../index.ts';
import { optionsFromEnv, startHarborEmulator } from '../index.ts';
import { checkFaults, FaultConfigError, faultsFromEnv } from './faults.ts';

const auth = { authorization: `Basic ${Buffer.from('admin:Harbor12345').toString('base64')}` };
const PROJECT_ROUTE = 'GET /api/v2.0/projects/{project_name_or_id}';

let emulator: HarborEmulator;

beforeAll(async () => {
  emulator = await startHarborEmulator({
    seed: 7,
    projects: [{ name: 'library', public: true }],
    localImages: [{ image: 'library/app:1', size: 10 }],
  });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

const get = (path: string, init: RequestInit = {}) =>
  fetch(`${emulator.url}${path}`, { ...init, headers: { ...auth, ...init.headers } });

describe('configuration', () => {
  it('names the field and the rule of a bad switch', () => {
    expect(() => checkFaults({ api: { error: { rate: 2 } } })).toThrow(
      /api\.error\.rate must be a number from 0 to 1/,
    );
    expect(() => checkFaults({ api: { error: { rate: 1, status: 404 } } })).toThrow(
      /api\.error\.status must be a 5xx status/,
    );
    expect(() => checkFaults({ api: { slow: { rate: 1 } as never } })).toThrow(/api\.slow\.delayMs/);
    expect(() => checkFaults({ webhooks: { drop: { rate: 0.5, count: -1 } } })).toThrow(FaultConfigError);
  });

  it('reads switches from the environment', () => {
    const faults = faultsFromEnv({
      HARBOR_EMULATOR_FAULTS: JSON.stringify({ api: { routes: ['GET /v2/*'] } }),
      HARBOR_FAULT_5XX_RATE: '0.25',
      HARBOR_FAULT_429_RATE: '0.5',
      HARBOR_FAULT_RETRY_AFTER_S: '3',
      HARBOR_FAULT_WEBHOOK_DELAY_RATE: '1',
      HARBOR_FAULT_WEBHOOK_DELAY_MS: '700',
    });
    expect(faults).toEqual({
      api: { routes: ['GET /v2/*'], error: { rate: 0.25 }, rateLimit: { rate: 0.5, retryAfterSeconds: 3 } },
      webhooks: { delay: { rate: 1, delayMs: 700 } },
    });
    expect(() => faultsFromEnv({ HARBOR_FAULT_TIMEOUT_RATE: 'often' })).toThrow(
      /HARBOR_FAULT_TIMEOUT_RATE must be a number from 0 to 1/,
    );
    expect(
      optionsFromEnv({ HARBOR_EMULATOR_PORT: '4999', HARBOR_EMULATOR_TIME_SCALE: '0.01' }),
    ).toMatchObject({ port: 4999, timing: { timeScale: 0.01 } });
    expect(() => optionsFromEnv({ HARBOR_EMULATOR_PORT: '70000' })).toThrow(/HARBOR_EMULATOR_PORT/);
  });
});

describe('API faults', () => {
  it('fails about the configured share of requests with 5xx, reproducibly', async () => {
    emulator.setFaults({ api: { error: { rate: 0.3 } } });
    let failed = 0;
    for (let i = 0; i < 100; i++) if ((await get('/api/v2.0/projects/library')).status === 500) failed += 1;
    expect(failed).toBeGreaterThan(15);
    expect(failed).toBeLessThan(45);
    expect(emulator.stats().faults.error).toBe(failed);
  });

  it('limits faults to the named routes', async () => {
    emulator.setFaults({ api: { routes: ['GET /v2/*'], error: { rate: 1 } } });
    expect((await get('/api/v2.0/projects/library')).status).toBe(200);
    expect((await get('/v2/library/app/manifests/1')).status).toBe(500);
  });

  it('answers 429 with Retry-After in the error shape of each API', async () => {
    emulator.setFaults({ api: { rateLimit: { rate: 1, retryAfterSeconds: 7 } } });
    const api = await get('/api/v2.0/projects/library');
    expect(api.status).toBe(429);
    expect(api.headers.get('retry-after')).toBe('7');
    expect(await api.json()).toEqual({ errors: [{ code: 'TOO_MANY_REQUEST', message: expect.any(String) }] });
    const registry = await get('/v2/library/app/manifests/1');
    expect(((await registry.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe(
      'TOOMANYREQUESTS',
    );
  });

  it('answers 502-504 with the HTML page of the proxy in front of Harbor', async () => {
    emulator.setFaults({ api: { error: { rate: 1, status: 504 } } });
    const response = await get('/api/v2.0/projects/library');
    expect(response.status).toBe(504);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
  });

  it('slows answers down', async () => {
    emulator.setFaults({ api: { slow: { rate: 1, delayMs: 200 } } });
    const started = Date.now();
    expect((await get('/api/v2.0/projects/library')).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('can lose the answer after doing the work', async () => {
    emulator.setFaults({
      api: { routes: ['POST /api/v2.0/projects'], timeout: { rate: 1, afterProcessing: true } },
    });
    const client = new HarborClient({
      url: emulator.url,
      credentials: { username: 'admin', password: 'Harbor12345' },
      retry: { attempts: 4, timeoutMs: 150 },
    });
    await expect(client.createProject({ project_name: 'ghost' })).rejects.toMatchObject({ code: 'TIMEOUT' });
    // Not retried (a POST), yet done: the case that makes blind retries dangerous.
    expect(emulator.stats().requests.byRoute['POST /api/v2.0/projects']).toBe(1);
    expect(await client.projectExists('ghost')).toBe(true);
  });

  it('takes fault switches over HTTP and refuses bad ones', async () => {
    const bad = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ api: { error: { rate: -1 } } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(
      /api\.error\.rate/,
    );
    const good = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ api: { error: { rate: 1 } } }),
    });
    expect(good.status).toBe(200);
    expect((await get('/api/v2.0/projects/library')).status).toBe(500);
  });
});

describe('request counting', () => {
  it('counts requests by method and route, not counting its own controls', async () => {
    await get('/api/v2.0/projects/library');
    await get('/api/v2.0/projects/1');
    await get('/v2/library/app/manifests/1', { method: 'HEAD' });
    await get('/api/v2.0/replication/executions/42');
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as EmulatorStats;
    expect(stats.requests.byRoute).toEqual({
      [PROJECT_ROUTE]: 2,
      'HEAD /v2/{name}/manifests/{reference}': 1,
      'GET /api/v2.0/replication/executions/{id}': 1,
    });
    expect(stats.requests.total).toBe(4);
    expect((await fetch(`${emulator.url}/_emulator/stats/reset`, { method: 'POST' })).status).toBe(200);
    expect(emulator.stats().requests).toEqual({ total: 0, byRoute: {} });
  });

  it('adds upstream images over HTTP', async () => {
    const response = await fetch(`${emulator.url}/_emulator/upstream-images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'quay.io/ivoa/tool:1', size: 1000 }),
    });
    expect(response.status).toBe(201);
    expect(((await response.json()) as { digest: string }).digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const bad = await fetch(`${emulator.url}/_emulator/upstream-images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'quay.io/Bad' }),
    });
    expect(bad.status).toBe(400);
  });
});
