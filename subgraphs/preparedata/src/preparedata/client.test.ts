import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PrepareDataEmulator } from '../../emulator/index.ts';
import { startPrepareDataEmulator } from '../../emulator/index.ts';
import { eventually, MB, testWorld } from '../../emulator/testing/fixtures.ts';
import { PrepareDataClient, PrepareDataError } from './client.ts';
import type { PrepareDataClientOptions } from './client.ts';
import { defineMapping } from './mapping.ts';
import { StageRequestError } from './request.ts';
import type { StageJob } from './types.ts';

let emulator: PrepareDataEmulator;
let client: PrepareDataClient;
const delays: number[] = [];

function makeClient(options: Partial<PrepareDataClientOptions> = {}): PrepareDataClient {
  return new PrepareDataClient({
    baseUrl: emulator.url,
    token: 'dev:alice',
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
}

const finished = (job: StageJob) => job.state !== 'QUEUED' && job.state !== 'STAGING';

beforeAll(async () => {
  emulator = await startPrepareDataEmulator(testWorld());
  client = makeClient();
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
  delays.length = 0;
});

describe('staging through the client', () => {
  it('reports rising progress, completes, and leaves sparse files of the right size', async () => {
    const { jobId } = await client.submit({
      dids: ['test:medium', { namespace: 'test', name: 'small' }],
      urls: ['https://data.example.org/cubes/cube.fits'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    const seen: number[] = [];
    const job = await eventually(
      async () => {
        const job = await client.getJob(jobId);
        seen.push(job.bytesDone);
        return job;
      },
      (job) => job.state === 'COMPLETED',
    );
    expect(job.bytesTotal).toBe(50 * MB + 1000 + 2000);
    expect(job.bytesDone).toBe(job.bytesTotal);
    expect(seen.some((bytes) => bytes > 0 && bytes < job.bytesTotal)).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(job.startedAt).not.toBeNull();
    expect(job.completedAt).not.toBeNull();
    const medium = job.files.find((file) => file.source === 'test:medium')!;
    expect(medium).toMatchObject({ state: 'COMPLETED', sourceSite: 'SLOW', inFlightAtStart: 0 });
    expect(medium.did).toEqual({ namespace: 'test', name: 'medium' });
    expect(job.files.find((file) => file.url)?.sourceSite).toBe('data.example.org');
    for (const file of job.files) {
      expect(file.localPath).toMatch(new RegExp(`^${emulator.dataRoot}/area/`));
      expect(statSync(file.localPath!).size).toBe(file.bytesTotal);
    }
    await client.release(jobId);
  });

  it('lists many jobs in one request and names the unknown ones', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await client.submit({ dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 })).jobId,
      );
    emulator.resetStats();
    const list = await client.listJobs([...ids, 'no-such-job', ids[0]!]);
    expect(list.jobs.map((job) => job.jobId).sort()).toEqual([...ids].sort());
    expect(list.missing).toEqual(['no-such-job']);
    const { requests } = emulator.stats();
    expect(requests.byOperation).toEqual({ listJobs: 1 });
    expect(requests.byJob[ids[1]!]).toEqual({ listJobs: 1 });

    const batched = makeClient({ mapping: defineMapping({ listBatchSize: 2 }) });
    expect((await batched.listJobs(ids)).jobs).toHaveLength(3);
    expect(emulator.stats().requests.byOperation.listJobs).toBe(3);
    expect(await client.listJobs([])).toEqual({ jobs: [], missing: [] });
    for (const id of ids) await client.release(id);
  });

  it('extends the lifetime; release removes the files and is harmless twice', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    const done = await eventually(() => client.getJob(jobId), finished);
    const path = done.files[0]!.localPath!;
    expect(existsSync(path)).toBe(true);

    const extended = await client.extendLifetime(jobId, 7200);
    expect(extended.lifetimeSeconds).toBe(7200);
    expect(Date.parse(extended.expiresAt) - Date.now()).toBeGreaterThan(7100_000);

    const released = await client.release(jobId);
    expect(released.state).toBe('RELEASED');
    expect(released.files[0]).toMatchObject({ state: 'RELEASED', localPath: null });
    expect(existsSync(path)).toBe(false);
    expect((await client.release(jobId)).state).toBe('RELEASED');
    const refused = await client.extendLifetime(jobId, 60).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PrepareDataError);
    expect(refused).toMatchObject({ status: 409, retryable: false, attempts: 1 });
    expect((refused as Error).message).toMatch(/is RELEASED; only QUEUED, STAGING or COMPLETED/);
  });

  it('keeps a file two jobs share until both have let go of it', async () => {
    const request = { dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 };
    const first = (await client.submit(request)).jobId;
    const second = (await client.submit(request)).jobId;
    const [a, b] = await Promise.all(
      [first, second].map((id) =>
        eventually(
          () => client.getJob(id),
          (job) => job.state === 'COMPLETED',
        ),
      ),
    );
    expect(a!.files[0]!.localPath).toBe(b!.files[0]!.localPath);
    await client.release(first);
    expect(existsSync(b!.files[0]!.localPath!)).toBe(true);
    await client.release(second);
    expect(existsSync(b!.files[0]!.localPath!)).toBe(false);
  });

  it('expires a job when its lifetime ends and removes its files', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 1,
    });
    const completed = await eventually(
      () => client.getJob(jobId),
      (job) => job.state === 'COMPLETED',
    );
    const path = completed.files[0]!.localPath!;
    expect(existsSync(path)).toBe(true);
    const expired = await eventually(
      () => client.getJob(jobId),
      (job) => job.state === 'EXPIRED',
      3000,
    );
    expect(expired.message).toBe('lifetime of 1 s ended');
    expect(expired.files[0]).toMatchObject({ state: 'EXPIRED', localPath: null });
    expect(existsSync(path)).toBe(false);
  });
});

describe('failures', () => {
  it('fails a job with a message naming the missing DID', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small', 'test:not-there'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    const job = await eventually(() => client.getJob(jobId), finished);
    expect(job.state).toBe('FAILED');
    expect(job.message).toBe('DID test:not-there was not found');
    expect(job.files.find((file) => file.source === 'test:not-there')).toMatchObject({
      state: 'FAILED',
      message: 'not found at the source',
    });
    expect(job.files.every((file) => file.localPath === null)).toBe(true);
  });

  it('fails a job that does not fit in its storage area', async () => {
    const { jobId } = await client.submit({
      dids: ['test:medium'],
      targetStorageArea: 'tiny',
      lifetimeSeconds: 60,
    });
    const job = await eventually(() => client.getJob(jobId), finished);
    expect(job.state).toBe('FAILED');
    expect(job.message).toBe(
      `storage area tiny is full: the job needs ${50 * MB} more bytes but only 10000 of 10000 bytes are free`,
    );
  });

  it('refuses an unknown storage area with the field named', async () => {
    const error = await client
      .submit({ dids: ['test:small'], targetStorageArea: 'nowhere', lifetimeSeconds: 60 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 422, retryable: false });
    expect((error as Error).message).toMatch(/to_storage_area_uuid "nowhere" is not a storage area/);
  });

  it('validates a request before anything is sent', async () => {
    const base = { targetStorageArea: 'area', lifetimeSeconds: 60 };
    await expect(client.submit({ ...base, dids: ['no-colon'] })).rejects.toThrow(
      new StageRequestError('dids[0] must be "namespace:name" (got "no-colon")'),
    );
    await expect(client.submit({ ...base, dids: [] })).rejects.toThrow(/at least one source/);
    await expect(client.submit({ ...base, dids: ['a:b'], lifetimeSeconds: 0 })).rejects.toThrow(
      /lifetimeSeconds must be a whole number of seconds/,
    );
    await expect(client.submit({ ...base, urls: ['relative/path'] })).rejects.toThrow(
      /urls\[0\] must be an absolute URL/,
    );
    await expect(
      client.submit({ ...base, dids: ['a:b'], callback: { url: 'http://x.example/cb', secret: 'short' } }),
    ).rejects.toThrow(/callback.secret must be at least 16 characters/);
    expect(emulator.stats().requests.total).toBe(0);
  });

  it('does not retry a 404 and carries the service detail', async () => {
    const error = await client.getJob('no-such-job').catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 404, attempts: 1, detail: 'staging job no-such-job not found' });
    expect(emulator.stats().requests.byOperation.getJob).toBe(1);
  });

  it('sends the bearer token, fresh per request', async () => {
    let calls = 0;
    const tokenClient = makeClient({ token: () => `dev:user-${++calls}` });
    const { jobId } = await tokenClient.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 5,
    });
    // A different token is a different user, who cannot see the job.
    await expect(tokenClient.getJob(jobId)).rejects.toMatchObject({ status: 404 });
    await expect(makeClient({ token: undefined }).getJob(jobId)).rejects.toMatchObject({ status: 401 });
  });
});

describe('retries', () => {
  const recordingClient = (maxAttempts = 5) =>
    makeClient({
      retry: { attempts: maxAttempts, baseDelayMs: 100, maxDelayMs: 400 },
      random: () => 0.5,
      sleep: async (ms) => void delays.push(ms),
    });

  it('retries a timed-out submit with the same idempotency key and gets one job', async () => {
    emulator.setFaults({
      api: { operations: ['submit'], hang: { rate: 1, count: 1, afterProcessing: true } },
    });
    const impatient = makeClient({ timeoutMs: 300 });
    const { jobId, idempotencyKey } = await impatient.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 60,
    });
    const stats = emulator.stats();
    expect(stats.faults.hangAfter).toBe(1);
    expect(stats.requests.byOperation.submit).toBe(2);
    expect(stats.requests.byJob[jobId]).toEqual({ submit: 2 });
    const again = await client.submit(
      { dids: ['test:small'], targetStorageArea: 'area', lifetimeSeconds: 60 },
      { idempotencyKey },
    );
    expect(again.jobId).toBe(jobId);
    await expect(
      client.submit(
        { dids: ['test:medium'], targetStorageArea: 'area', lifetimeSeconds: 60 },
        { idempotencyKey },
      ),
    ).rejects.toMatchObject({
      status: 422,
      detail: `idempotency-key ${idempotencyKey} was already used for a different request`,
    });
    await client.release(jobId);
  });

  it('backs off exponentially on 5xx and gives up with a retryable error', async () => {
    emulator.setFaults({ api: { operations: ['getJob'], error: { rate: 1, status: 502 } } });
    const error = await recordingClient(4)
      .getJob('whatever')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrepareDataError);
    expect(error).toMatchObject({ status: 502, retryable: true, attempts: 4 });
    expect(delays).toEqual([75, 150, 300]);
    expect(emulator.stats().requests.byOperation.getJob).toBe(4);
  });

  it('waits as long as Retry-After says on 429, then succeeds', async () => {
    const { jobId } = await client.submit({
      dids: ['test:small'],
      targetStorageArea: 'area',
      lifetimeSeconds: 5,
    });
    emulator.setFaults({
      api: { operations: ['getJob'], rateLimit: { rate: 1, count: 2, retryAfterSeconds: 3 } },
    });
    const job = await recordingClient().getJob(jobId);
    expect(job.jobId).toBe(jobId);
    expect(delays).toEqual([3050, 3050]);
    expect(emulator.stats().faults.rateLimit).toBe(2);
  });

  it('retries when the connection is refused', async () => {
    const offline = new PrepareDataClient({
      baseUrl: 'http://127.0.0.1:9',
      retry: { attempts: 2, baseDelayMs: 1 },
    });
    await expect(offline.getJob('x')).rejects.toMatchObject({ status: null, retryable: true, attempts: 2 });
  });
});

describe('the mapping is the one place for wire assumptions', () => {
  const wireJob = (state: string) => ({
    job_id: 'j1',
    state,
    message: null,
    to_storage_area_uuid: 'area',
    lifetime: 60,
    bytes_done: 5,
    bytes_total: 10,
    created_at: '2025-01-01T00:00:00.000Z',
    updated_at: '2025-01-01T00:00:00.000Z',
    started_at: null,
    completed_at: null,
    expires_at: '2025-01-01T00:01:00.000Z',
    files: [],
  });

  it('maps other routes and state names', async () => {
    const urls: string[] = [];
    const fake: typeof fetch = async (input) => {
      urls.push(String(input));
      return new Response(JSON.stringify(wireJob('REPLICATING')), { status: 200 });
    };
    const custom = new PrepareDataClient({
      baseUrl: 'https://dm.example.org/api/',
      fetch: fake,
      mapping: defineMapping({
        routes: { getJob: { method: 'GET', path: '/data/stage/status/:jobId' } },
        states: { REPLICATING: 'STAGING' },
      }),
    });
    expect((await custom.getJob('a/b')).state).toBe('STAGING');
    expect(urls).toEqual(['https://dm.example.org/api/data/stage/status/a%2Fb']);
  });

  it('rejects an unknown state naming the field', async () => {
    const fake: typeof fetch = async () => new Response(JSON.stringify(wireJob('STUCK')), { status: 200 });
    const strict = new PrepareDataClient({ baseUrl: 'https://dm.example.org', fetch: fake });
    await expect(strict.getJob('j1')).rejects.toThrow(/job.state must be one of QUEUED, .* \(got "STUCK"\)/);
  });
});
