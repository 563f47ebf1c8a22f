import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PrepareDataClient } from '../src/preparedata/client.ts';
import type { StageJob } from '../src/preparedata/types.ts';
import { optionsFromEnv } from './config.ts';
import { faultsFromEnv } from './faults/faults.ts';
import type { PrepareDataEmulator } from './index.ts';
import { startPrepareDataEmulator } from './index.ts';
import { eventually, MB, testWorld } from './testing/fixtures.ts';

const AUTH = { authorization: 'Bearer dev:alice' };
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' };
const finished = (job: StageJob) => job.state !== 'QUEUED' && job.state !== 'STAGING';

describe('HTTP behaviour, auth, faults and counting', () => {
  let emulator: PrepareDataEmulator;
  let client: PrepareDataClient;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(emulator.url + path, { ...init, headers: { ...JSON_AUTH, ...init.headers } });
  const submitBody = JSON.stringify({
    to_storage_area_uuid: 'area',
    dids: [{ namespace: 'test', name: 'small' }],
    lifetime: 60,
  });

  beforeAll(async () => {
    emulator = await startPrepareDataEmulator(testWorld({ tokens: { 'service-token-1': 'broker' } }));
    client = new PrepareDataClient({ baseUrl: emulator.url, token: 'dev:alice' });
  });
  afterAll(() => emulator.close());
  afterEach(() => {
    emulator.setFaults({});
    emulator.resetStats();
  });

  it('accepts dev and configured tokens and keeps users apart', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    expect((await fetch(`${emulator.url}/v1/data/stage/${jobId}`)).status).toBe(401);
    const wrong = await fetch(`${emulator.url}/v1/data/stage/${jobId}`, {
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const broker = { authorization: 'Bearer service-token-1' };
    expect((await fetch(`${emulator.url}/v1/data/stage/${jobId}`, { headers: broker })).status).toBe(404);
    const listed = await fetch(`${emulator.url}/v1/data/stage?job_id=${jobId}`, { headers: broker });
    expect(await listed.json()).toEqual({ jobs: [], not_found: [jobId] });
    expect((await api(`/v1/data/stage/${jobId}`)).status).toBe(200);
  });

  it('answers invalid input with FastAPI-style 422s naming the field', async () => {
    const response = await api('/v1/data/stage', {
      method: 'POST',
      body: JSON.stringify({
        to_storage_area_uuid: 'area',
        dids: [{ namespace: 'test', name: 'small' }],
        lifetime: 'soon',
      }),
    });
    expect(response.status).toBe(422);
    expect(await response.json()).toEqual({
      detail: [{ loc: ['body'], msg: 'lifetime must be a number of seconds', type: 'value_error' }],
    });
    const list = await api('/v1/data/stage');
    expect(((await list.json()) as { detail: { msg: string }[] }).detail[0]!.msg).toBe(
      'query parameter job_id must name at least one job',
    );
  });

  it('counts requests by route, operation and job, but not its own control routes', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    await client.getJob(jobId);
    await client.getJob(jobId);
    await client.listJobs([jobId, 'other']);
    await api('/v1/no-such-route');
    await fetch(`${emulator.url}/_emulator/stats`);
    const { requests } = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as ReturnType<
      PrepareDataEmulator['stats']
    >;
    expect(requests.total).toBe(5);
    expect(requests.byRoute).toEqual({
      'POST /v1/data/stage': 1,
      'GET /v1/data/stage/:jobId': 2,
      'GET /v1/data/stage': 1,
      'GET <unmatched>': 1,
    });
    expect(requests.byJob[jobId]).toEqual({ submit: 1, getJob: 2, listJobs: 1 });
    expect(requests.byJob['other']).toEqual({ listJobs: 1 });
    expect((await fetch(`${emulator.url}/_emulator/stats`, { method: 'DELETE' })).status).toBe(204);
    expect(emulator.stats().requests.total).toBe(0);
  });

  it('injects 5xx and 429 only for the chosen operations, as many times as asked', async () => {
    emulator.setFaults({
      api: {
        operations: ['getJob'],
        error: { rate: 1, count: 1, status: 500 },
        rateLimit: { rate: 1, count: 1, retryAfterSeconds: 7 },
      },
    });
    const first = await api('/v1/data/stage/x');
    expect(first.status).toBe(500);
    expect(await first.json()).toEqual({ detail: 'injected fault: HTTP 500 from the prepareData emulator' });
    const second = await api('/v1/data/stage/x');
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('7');
    expect((await api('/v1/data/stage/x')).status).toBe(404);
    expect((await api('/v1/data/stage', { method: 'POST', body: submitBody })).status).toBe(201);
    expect(emulator.stats().faults).toMatchObject({ error: 1, rateLimit: 1 });
  });

  it('hangs before processing: the client times out and no job exists', async () => {
    emulator.setFaults({ api: { operations: ['submit'], hang: { rate: 1, count: 1 } } });
    const before = emulator.stats().staging.jobs;
    const error = await api('/v1/data/stage', {
      method: 'POST',
      body: submitBody,
      signal: AbortSignal.timeout(200),
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('TimeoutError');
    expect(emulator.stats().staging.jobs).toBe(before);
    expect((await api('/v1/data/stage', { method: 'POST', body: submitBody })).status).toBe(201);
    expect(emulator.stats().staging.jobs).toBe(before + 1);
    expect(emulator.stats().faults.hang).toBe(1);
  });

  it('slows responses down', async () => {
    emulator.setFaults({ api: { slow: { rate: 1, delayMs: 250 } } });
    const started = Date.now();
    expect((await api('/v1/data/stage/x')).status).toBe(404);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });

  it('switches faults over HTTP and refuses bad settings naming the field', async () => {
    const put = (body: unknown) =>
      fetch(`${emulator.url}/_emulator/faults`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const ok = await put({ api: { error: { rate: 1, count: 1 } } });
    expect(await ok.json()).toEqual({ api: { error: { rate: 1, count: 1 } } });
    expect((await api('/v1/data/stage/x')).status).toBe(503);
    const bad = await put({ api: { error: { rate: 2 } } });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toContain('api.error.rate must be from 0 to 1 (got 2)');
  });

  it('adds catalogue entries at run time', async () => {
    const response = await fetch(`${emulator.url}/_emulator/catalogue/dids`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        namespace: 'late',
        name: 'arrival',
        sizeBytes: 10,
        replicas: [{ rse: 'FAST' }],
      }),
    });
    expect(response.status).toBe(204);
    const { jobId } = await client.submit({
      dids: ['late:arrival'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    expect((await eventually(() => client.getJob(jobId), finished)).state).toBe('COMPLETED');
  });
});

describe('transfers', () => {
  let emulator: PrepareDataEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });
  const start = async (options: Parameters<typeof testWorld>[0] = {}) => {
    emulator = await startPrepareDataEmulator(testWorld(options));
    return new PrepareDataClient({ baseUrl: emulator.url, token: 'dev:alice' });
  };
  const submit = (client: PrepareDataClient, did: string) =>
    client.submit({ dids: [did], targetStorageArea: 'area', lifetimeSeconds: 60 }).then((r) => r.jobId);

  it('queues beyond a site’s slots and shares its bandwidth between running transfers', async () => {
    const client = await start();
    const ids = [
      await submit(client, 'test:pair-1'),
      await submit(client, 'test:pair-2'),
      await submit(client, 'test:pair-3'),
    ];
    await eventually(
      () => emulator!.stats().staging.sites['PAIR'],
      (site) => site?.active === 2 && site.queued === 1,
    );
    const [one, two, three] = await Promise.all(
      ids.map((id) => eventually(() => client.getJob(id), finished, 8000)),
    );
    expect(one!.files[0]!.inFlightAtStart).toBe(0);
    expect(two!.files[0]!.inFlightAtStart).toBe(1);
    // Alone, 40 MB at 100 MB/s takes 0.4 s; sharing the site with another, about twice that.
    const seconds = (job: StageJob) => (Date.parse(job.completedAt!) - Date.parse(job.startedAt!)) / 1000;
    expect(seconds(one!)).toBeGreaterThan(0.7);
    expect(Date.parse(three!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(one!.completedAt!) - 50);
  });

  it('fails transfers at the configured error rate, naming source and site, and cancels the rest', async () => {
    const client = await start({ transferErrorRate: 1 });
    const { jobId } = await client.submit({
      dids: ['test:medium', 'test:pair-1'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    const job = await eventually(() => client.getJob(jobId), finished);
    expect(job.state).toBe('FAILED');
    expect(job.message).toMatch(/^transfer of DID test:(medium from SLOW|pair-1 from PAIR) failed: /);
    expect(job.files.map((file) => file.message)).toContain('not staged because the job failed');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { staging } = emulator!.stats();
    expect(staging.transfersFailed).toBe(1);
    expect(staging.sites).toMatchObject({ SLOW: { active: 0 }, PAIR: { active: 0 } });
    expect(readdirSync(path.join(emulator!.dataRoot, 'area'))).toEqual([]);
  });

  it('scales transfer time', async () => {
    const client = await start({ timeScale: 100 });
    const jobId = await submit(client, 'test:medium');
    const started = Date.now();
    await eventually(
      () => client.getJob(jobId),
      (job) => job.state === 'COMPLETED',
      2000,
      10,
    );
    expect(Date.now() - started).toBeLessThan(300);
  });

  it('restarts in-flight transfers from zero and keeps completed files', async () => {
    const client = await start();
    const done = await submit(client, 'test:small');
    const kept = await eventually(
      () => client.getJob(done),
      (job) => job.state === 'COMPLETED',
    );
    const moving = await submit(client, 'test:medium');
    const before = await eventually(
      () => client.getJob(moving),
      (job) => job.bytesDone > 20 * MB,
    );
    await emulator!.restart();
    const after = await client.getJob(moving);
    expect(after.bytesDone).toBeLessThan(before.bytesDone);
    expect(existsSync(kept.files[0]!.localPath!)).toBe(true);
    expect((await client.getJob(done)).state).toBe('COMPLETED');
    expect((await eventually(() => client.getJob(moving), finished)).state).toBe('COMPLETED');
  });

  it('can fail in-flight transfers on restart instead', async () => {
    const client = await start();
    const moving = await submit(client, 'test:medium');
    await eventually(
      () => client.getJob(moving),
      (job) => job.bytesDone > 0,
    );
    await emulator!.restart({ inFlight: 'fail' });
    const job = await client.getJob(moving);
    expect(job.state).toBe('FAILED');
    expect(job.message).toBe(
      'transfer of DID test:medium from SLOW failed: interrupted by a restart of the staging service',
    );
  });

  it('refuses connections during downtime and remembers jobs and idempotency keys after', async () => {
    const client = await start();
    const { jobId } = await client.submit(
      { dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 },
      { idempotencyKey: 'step-1/data-1' },
    );
    const restarting = emulator!.restart({ downtimeMs: 300 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const refused = await fetch(`${emulator!.url}/healthz`).catch((e: unknown) => e);
    expect((refused as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    await restarting;
    expect((await client.getJob(jobId)).jobId).toBe(jobId);
    const again = await client.submit(
      { dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 },
      { idempotencyKey: 'step-1/data-1' },
    );
    expect(again.jobId).toBe(jobId);
  });
});

describe('configuration from the environment', () => {
  it('reads emulator options and fault switches', () => {
    const options = optionsFromEnv({
      PREPAREDATA_EMULATOR_PORT: '5103',
      PREPAREDATA_EMULATOR_TIME_SCALE: '60',
      PREPAREDATA_EMULATOR_TOKENS: 'abc=broker,def=portal',
      PREPAREDATA_EMULATOR_STORAGE_AREAS: 'user=1000,scratch=10',
      PREPAREDATA_EMULATOR_CALLBACK_MIN_INTERVAL_MS: '500',
      PREPAREDATA_FAULT_OPERATIONS: 'submit,getJob',
      PREPAREDATA_FAULT_ERROR_RATE: '0.1',
      PREPAREDATA_FAULT_429_RATE: '0.2',
      PREPAREDATA_FAULT_HANG_RATE: '0.05',
      PREPAREDATA_FAULT_HANG_AFTER_PROCESSING: 'true',
      PREPAREDATA_FAULT_CALLBACK_REORDER_RATE: '0.5',
      PREPAREDATA_FAULT_CALLBACK_DELAY_MS: '100',
    });
    expect(options).toMatchObject({
      port: 5103,
      timeScale: 60,
      tokens: { abc: 'broker', def: 'portal' },
      storageAreas: [
        { id: 'user', capacityBytes: 1000 },
        { id: 'scratch', capacityBytes: 10 },
      ],
      callbacks: { minIntervalMs: 500 },
      faults: {
        api: {
          operations: ['submit', 'getJob'],
          error: { rate: 0.1 },
          rateLimit: { rate: 0.2, retryAfterSeconds: 1 },
          hang: { rate: 0.05, afterProcessing: true },
        },
        callbacks: { reorder: { rate: 0.5 }, delay: { rate: 1, delayMs: 100, jitterMs: 0 } },
      },
    });
    expect(optionsFromEnv({}).port).toBe(4103);
  });

  it('names the variable that is wrong', () => {
    expect(() => faultsFromEnv({ PREPAREDATA_FAULT_ERROR_RATE: 'lots' })).toThrow(
      'PREPAREDATA_FAULT_ERROR_RATE=lots must be a number between 0 and 1',
    );
    expect(() => faultsFromEnv({ PREPAREDATA_FAULT_CALLBACK_DROP_RATE: '3' })).toThrow(
      'PREPAREDATA_FAULT_CALLBACK_DROP_RATE=3 must be a number between 0 and 1',
    );
    expect(() => faultsFromEnv({ PREPAREDATA_FAULT_OPERATIONS: 'submit,poll' })).toThrow(
      /poll is not one of/,
    );
    expect(() => optionsFromEnv({ PREPAREDATA_EMULATOR_TOKENS: 'justatoken' })).toThrow(
      'PREPAREDATA_EMULATOR_TOKENS items must be key=value (got justatoken)',
    );
  });
});
