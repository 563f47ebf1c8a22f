/**
 * Offers whose start comes from the learned estimates and the Harbor worker's image check: a real
 * Harbor worker over HTTP, in front of two Harbor emulators (a source registry and the site's
 * Harbor); observations kept across a broker restart.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '@srcnet/service-kit';
import { startHarborEmulator } from '../../harbor/emulator/index.ts';
import { loadConfig as loadHarborConfig } from '../../harbor/src/config.ts';
import { startHarborWorker } from '../../harbor/src/worker.ts';
import { parseDuration } from '../src/offers/time.ts';
import { containerStep, testBroker, waitFor } from './harness.ts';

const MB = 1024 * 1024;
const DOCKER =
  'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml';
const dir = mkdtempSync(join(tmpdir(), 'broker-estimates-'));
const stops: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
});

type Broker = Awaited<ReturnType<typeof testBroker>>;
async function broker(env: Record<string, string>): Promise<Broker> {
  const running = await testBroker({ PREPARATION_ESTIMATE: 'learned', ...env });
  stops.push(() => running.stop());
  return running;
}

async function call(target: Broker, method: string, path: string, body?: unknown) {
  const response = await fetch(`${target.url}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      authorization: 'Bearer dev:alice',
      accept: 'application/json',
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const request = (image: { location: string; digest: string }) => ({
  executable: { kind: DOCKER, image: { locations: [image.location], digest: image.digest } },
  schedule: { requested: { duration: 'PT10M' } },
});

interface OfferSet {
  result: 'YES' | 'NO';
  meta: { messages?: { level: string; kind: string; message: string }[] };
  offers?: { schedule: { preparing: { duration: string }; available: { start: string } } }[];
}
const offers = async (target: Broker, body: unknown) => {
  const made = await call(target, 'POST', '/requests', body);
  expect(made.status).toBe(303);
  return made.body as OfferSet;
};
const firstStart = (set: OfferSet) => Date.parse(set.offers![0]!.schedule.available.start.split('/')[0]!);
const preparingSeconds = (set: OfferSet) =>
  parseDuration(set.offers![0]!.schedule.preparing.duration)! / 1000;

describe('offers from a real Harbor worker', () => {
  let harborWorkerUrl: string;
  let sourceHost: string;
  let images: Record<'cached' | 'uncached', { location: string; digest: string }>;

  beforeAll(async () => {
    const source = await startHarborEmulator({ projects: [{ name: 'ivoa', public: true }] });
    stops.push(() => source.close());
    const harbor = await startHarborEmulator({
      timing: { timeScale: 0.1, jitter: 0 },
      projects: [{ name: 'skaha' }],
    });
    stops.push(() => harbor.close());
    sourceHost = new URL(source.url).host;
    images = {
      uncached: {
        location: `${sourceHost}/ivoa/webtop:1.0`,
        digest: source.addLocalImage({ image: 'ivoa/webtop:1.0', size: 400 * MB, layers: 4 }).digest,
      },
      cached: {
        location: `${sourceHost}/ivoa/cached:1.0`,
        digest: harbor.addLocalImage({ image: 'skaha/ivoa/cached:1.0', size: 400 * MB, layers: 4 }).digest,
      },
    };
    const worker = await startHarborWorker(
      loadHarborConfig({
        PORT: '0',
        HARBOR_SQLITE_PATH: join(dir, 'harbor.sqlite'),
        HARBOR_URL: harbor.url,
        HARBOR_UPSTREAM_URLS: `${sourceHost}=${source.url}`,
        HARBOR_COPY_BANDWIDTH: '50000000',
        HARBOR_COPY_OVERHEAD_SECONDS: '3',
      }),
      { logger: pino({ level: 'silent' }) },
    );
    stops.push(() => worker.close());
    await worker.ready;
    harborWorkerUrl = worker.url;
  });

  it('offers an image that must be copied later than a cached one, by the estimated copy time', async () => {
    const target = await broker({ HARBOR_WORKER_URL: harborWorkerUrl });
    const check = await fetch(`${harborWorkerUrl}/estimates`, {
      method: 'POST',
      body: JSON.stringify({
        image: { locations: [images.uncached.location], digest: images.uncached.digest },
      }),
    }).then((r) => r.json());
    // 400 MiB at 50 MB/s plus 3 s.
    expect(check.estimatedCopySeconds).toBeGreaterThan(10);

    const cached = await offers(target, request(images.cached));
    const uncached = await offers(target, request(images.uncached));
    expect([cached.result, uncached.result]).toEqual(['YES', 'YES']);
    // A cached image takes the reference's 1 s; the copy replaces it.
    const expected = check.estimatedCopySeconds - 1;
    expect(preparingSeconds(uncached) - preparingSeconds(cached)).toBeCloseTo(expected, 0);
    // Starts are whole booking blocks (1 s) after the requests, which are moments apart.
    const later = (firstStart(uncached) - firstStart(cached)) / 1000;
    expect(later).toBeGreaterThanOrEqual(expected - 1);
    expect(later).toBeLessThanOrEqual(expected + 2);
  });

  it('answers NO, naming the field, for an image that is missing or has another digest', async () => {
    const target = await broker({ HARBOR_WORKER_URL: harborWorkerUrl });
    const missing = await offers(
      target,
      request({ location: `${sourceHost}/ivoa/absent:1.0`, digest: `sha256:${'c'.repeat(64)}` }),
    );
    expect(missing.result).toBe('NO');
    expect(missing.meta.messages).toContainEqual(
      expect.objectContaining({
        level: 'ERROR',
        message: expect.stringMatching(
          /^The image named by executable\.image\.locations cannot be used: image not found/,
        ),
      }),
    );
    const wrong = `sha256:${'e'.repeat(64)}`;
    const mismatch = await offers(target, request({ location: images.uncached.location, digest: wrong }));
    expect(mismatch.result).toBe('NO');
    const text = mismatch.meta.messages!.map((m) => m.message).join('\n');
    expect(text).toContain('executable.image.digest');
    expect(text).toContain(wrong);
    expect(text).toContain(images.uncached.digest);
  });

  it('falls back on the history when the Harbor worker is down or silent, and says so', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    stops.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => silent.close(done));
    });
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise((done) => closed.close(done));

    for (const [url, reason] of [
      [`http://127.0.0.1:${(silent.address() as { port: number }).port}`, 'no answer within 0.3 s'],
      [`http://127.0.0.1:${closedPort}`, 'unreachable'],
    ] as const) {
      const target = await broker({ HARBOR_WORKER_URL: url, IMAGE_CHECK_TIMEOUT_SECONDS: '0.3' });
      const began = Date.now();
      const set = await offers(target, request(images.cached));
      expect(Date.now() - began).toBeLessThan(2000);
      expect(set.result).toBe('YES');
      // Not known to be cached: the reference's 60 s for a copy, then the session's 1 s.
      expect(preparingSeconds(set)).toBe(61);
      const warning = set.meta.messages!.find((m) => m.kind === 'urn:image-not-checked');
      expect(warning).toMatchObject({ level: 'WARN' });
      expect(warning!.message).toContain(reason);
      expect(warning!.message).toContain('reference constant: no history yet for image-copy');
    }
  });
});

describe('observations', () => {
  it('are kept in the store, survive a restart and change the next estimate', async () => {
    const path = join(dir, 'restart.sqlite');
    const first = await testBroker({ PREPARATION_ESTIMATE: 'learned', SQLITE_PATH: path });
    const before = preparingSeconds(await offers(first, containerStep()));
    // No Harbor worker, so nothing to copy (1 s), and a headless session's 1 s.
    expect(before).toBe(2);

    const direct = await call(first, 'POST', '/direct', containerStep());
    const id = direct.body.meta.uuid as string;
    await waitFor('the step to complete', async () =>
      (await call(first, 'GET', `/sessions/${id}`)).body.phase === 'COMPLETED' ? true : undefined,
    );
    const compute = (await call(first, 'GET', `/sessions/${id}`)).body.compute.meta.uuid as string;
    // Above the simulated platform's sequences, which count from the clock.
    const base = Date.now() * 1000 + 1_000_000;
    const callback = async (sequence: number, eventId = randomUUID()) => {
      const body = JSON.stringify({
        eventId,
        stepId: id,
        componentUuid: compute,
        phase: 'COMPLETED',
        sequence,
        at: new Date().toISOString(),
        observation: {
          action: 'session-start',
          params: { type: 'headless', cores: 1, memoryGiB: 1, inFlight: 0 },
          startedAt: new Date(Date.now() - 200_000).toISOString(),
          durationSeconds: 120 + (sequence % 7),
          outcome: 'ok',
        },
      });
      const response = await fetch(`${first.url}/callbacks`, {
        method: 'POST',
        headers: signedHeaders(first.config.callbackSecret, body, eventId),
        body,
      });
      expect(response.status).toBe(202);
    };
    for (let i = 0; i < 9; i++) await callback(base + i);
    // A repeated event is recorded once.
    const last = randomUUID();
    await callback(base + 9, last);
    await callback(base + 9, last);
    const rows = await first.store.db.selectFrom('preparation_observations').selectAll().execute();
    expect(rows).toHaveLength(10);
    expect(rows[0]).toMatchObject({ step_id: id, role: 'compute', action: 'session-start' });

    const learned = preparingSeconds(await offers(first, containerStep()));
    expect(learned).toBeGreaterThan(100);
    await first.close();

    const second = await broker({ SQLITE_PATH: path });
    expect(
      second.estimator.estimate('session-start', { type: 'headless', cores: 1, memoryGiB: 1, inFlight: 0 }),
    ).toMatchObject({ basis: { n: 10 } });
    const restarted = preparingSeconds(await offers(second, containerStep()));
    expect(restarted).toBeGreaterThan(100);
    expect(Math.abs(restarted - learned)).toBeLessThanOrEqual(1);
  });
});
