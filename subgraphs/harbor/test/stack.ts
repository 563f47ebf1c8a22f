/**
 * The end-to-end test stack: a source registry (a Harbor emulator standing in for ghcr.io and
 * the like), the site's Harbor (another emulator), the Harbor worker, and the real broker
 * in-process with HARBOR_WORKER_URL pointing at the worker (everything else simulated).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig as loadBrokerConfig } from '../../broker/src/config.ts';
import { startBroker } from '../../broker/src/server.ts';
import { startHarborEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startHarborWorker } from '../src/worker.ts';

const MB = 1024 * 1024;
export const DOCKER_KIND =
  'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml';
export const OWNER = { authorization: 'Bearer dev:alice' };

export async function startStack(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'harbor-test-'));
  const source = await startHarborEmulator({
    projects: [{ name: 'ivoa', public: true }],
  });
  // Copies take a tenth of real time: 400 MB at 50 MB/s plus 2 s overhead is about 1 s.
  const harbor = await startHarborEmulator({
    timing: { timeScale: 0.1, jitter: 0 },
    projects: [{ name: 'skaha' }],
  });
  const sourceHost = new URL(source.url).host;
  const images = {
    uncached: {
      location: `${sourceHost}/ivoa/webtop:1.0`,
      digest: source.addLocalImage({ image: 'ivoa/webtop:1.0', size: 400 * MB, layers: 4 }).digest,
    },
    cached: {
      location: `${sourceHost}/ivoa/cached:1.0`,
      digest: harbor.addLocalImage({ image: 'skaha/ivoa/cached:1.0', size: 400 * MB, layers: 4 }).digest,
    },
  };
  const workerEnv = {
    PORT: '0',
    HARBOR_SQLITE_PATH: join(dir, 'harbor.sqlite'),
    HARBOR_URL: harbor.url,
    HARBOR_UPSTREAM_URLS: `${sourceHost}=${source.url}`,
    HARBOR_COPY_BANDWIDTH: '50000000',
    HARBOR_COPY_OVERHEAD_SECONDS: '3',
    ...env,
  };
  let worker = await startHarborWorker(loadConfig(workerEnv), { logger: pino({ level: 'silent' }) });
  await worker.ready;
  const brokerConfig = loadBrokerConfig({
    BROKER_PORT: '0',
    SQLITE_PATH: join(dir, 'broker.sqlite'),
    BOOKING_BLOCK_SECONDS: '1',
    SIMULATION_PREPARE_SECONDS: 'compute=0.02,storage=0.01,data=0.03',
    SIMULATION_RUN_SECONDS: '0.05',
    SIMULATION_RELEASE_SECONDS: '0.01',
    PREPARATION_ESTIMATE: 'zero',
    HARBOR_WORKER_URL: worker.url,
  });
  const broker = await startBroker(brokerConfig, {
    estimate: () => ({ boundSeconds: 0, medianSeconds: 0, components: [] }),
  });

  const rest = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${broker.url}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...OWNER,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };
  const graphql = async (query: string, variables: Record<string, unknown> = {}, headers = OWNER) => {
    const response = await fetch(`${worker.url}/graphql`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    // Test assertions read whatever shape the query asked for.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return (await response.json()) as { data?: any; errors?: unknown[] };
  };

  return {
    source,
    harbor,
    get worker() {
      return worker;
    },
    /** Stops the worker, waits downtimeMs, and starts it again on the same port and database. */
    async restartWorker(downtimeMs: number) {
      const port = new URL(worker.url).port;
      await worker.close();
      await new Promise((done) => setTimeout(done, downtimeMs));
      worker = await startHarborWorker(loadConfig({ ...workerEnv, PORT: port }), {
        logger: pino({ level: 'silent' }),
      });
      await worker.ready;
    },
    broker,
    images,
    rest,
    graphql,
    /** A direct DockerContainer step; returns its id. */
    async direct(image: { location: string; digest: string }) {
      const made = await rest('POST', '/direct', {
        executable: { kind: DOCKER_KIND, image: { locations: [image.location], digest: image.digest } },
        schedule: { requested: { duration: 'PT10M' } },
      });
      if (made.status !== 303)
        throw new Error(`POST /direct answered ${made.status}: ${JSON.stringify(made.body)}`);
      return made.body.meta.uuid as string;
    },
    async phase(id: string): Promise<string> {
      return (await rest('GET', `/sessions/${id}`)).body.phase;
    },
    async stepImage(id: string) {
      const result = await graphql(
        `
          query ($reps: [_Any!]!) {
            _entities(representations: $reps) {
              ... on ExecutionStep {
                image {
                  reference
                  digest
                  sizeBytes
                  availableLocally
                  localReference
                  copyState
                  bytesDone
                  estimatedCopySeconds
                  message
                }
              }
            }
          }
        `,
        { reps: [{ __typename: 'ExecutionStep', id }] },
      );
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      return result.data._entities[0]?.image ?? null;
    },
    async stop() {
      await broker.close();
      await worker.close();
      await harbor.close();
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 25));
  }
}
