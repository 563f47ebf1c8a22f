/**
 * The end-to-end stack the tests drive: the prepareData emulator, this worker, and the real broker
 * in-process with PREPAREDATA_WORKER_URL pointing at the worker (the other workers simulated).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseDocument, upgradeExecutionRequest, type Ivoa } from '@srcnet/execution-step-schema';
import { STEP_CHANGED, type StepChange } from '@srcnet/service-kit';
import { testBroker } from '../../broker/test/harness.ts';
import { startPrepareDataEmulator, type PrepareDataEmulatorOptions } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startPrepareDataWorker } from '../src/worker.ts';

export const MB = 1_000_000;
export const EXAMPLES = '/work/shared/reference/calycopis-examples';

/** Two 40 MB cubes at a site that shares 20 MB/s between two transfers: about 4 s each. */
export const WORLD: PrepareDataEmulatorOptions = {
  jitter: 0,
  tickMs: 20,
  catalogue: {
    dids: [
      { namespace: 'testing', name: 'cube-a', sizeBytes: 40 * MB, replicas: [{ rse: 'SLOW_STORM' }] },
      { namespace: 'testing', name: 'cube-b', sizeBytes: 40 * MB, replicas: [{ rse: 'SLOW_STORM' }] },
      { namespace: 'testing', name: 'small', sizeBytes: 1000, replicas: [{ rse: 'FAST_STORM' }] },
    ],
    urls: [],
  },
  sites: {
    SLOW_STORM: { bandwidthBytesPerSecond: 20 * MB, maxInFlight: 2 },
    FAST_STORM: { bandwidthBytesPerSecond: 1000 * MB, maxInFlight: 4 },
  },
  storageAreas: [{ id: 'test-area', capacityBytes: 1000 * MB }],
  // Faster than the worker's own 1 s throttle, so that the throttle under test is the worker's.
  callbacks: { minIntervalMs: 200 },
};

export async function startStack(
  options: { env?: Record<string, string>; brokerEnv?: Record<string, string> } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'preparedata-test-'));
  const emulator = await startPrepareDataEmulator(WORLD);
  const workerEnv = {
    PORT: '0',
    SQLITE_PATH: join(dir, 'worker.sqlite'),
    PREPAREDATA_URL: emulator.url,
    PREPAREDATA_STORAGE_AREA: 'test-area',
    ...options.env,
  };
  const logger = pino({ level: 'silent' });
  let worker = await startPrepareDataWorker(loadConfig(workerEnv), { logger });
  const broker = await testBroker({
    PREPAREDATA_WORKER_URL: worker.url,
    SIMULATION_RUN_SECONDS: '2',
    ...options.brokerEnv,
  });
  /** Every callback the broker applied, in order (progress ones included). */
  const callbacks: Ivoa.ComponentCallback[] = [];
  const apply = broker.broker.applyCallback.bind(broker.broker);
  broker.broker.applyCallback = async (callback, source) => {
    const outcome = await apply(callback, source);
    if (outcome === 'applied') callbacks.push(callback);
    return outcome;
  };
  /** Every change the broker published to executionStepChanged subscribers. */
  const published: StepChange[] = [];
  const subscription = broker.pubsub.subscribe(STEP_CHANGED) as AsyncIterableIterator<StepChange>;
  void (async () => {
    for await (const change of subscription) published.push(change);
  })();

  return {
    emulator,
    broker,
    get worker() {
      return worker;
    },
    callbacks,
    published,
    /** Stops the worker, waits downtimeMs, and starts it again on the same port and database. */
    async restartWorker(downtimeMs: number, env: Record<string, string> = {}) {
      const port = new URL(worker.url).port;
      await worker.close();
      await new Promise((done) => setTimeout(done, downtimeMs));
      worker = await startPrepareDataWorker(loadConfig({ ...workerEnv, PORT: port, ...env }), { logger });
    },
    async stop() {
      await subscription.return?.();
      await broker.stop();
      await worker.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * example-009 (one SKAO data resource mounted at /calibration) with one data resource per DID, each
 * mounted under /data, as an IVOA 1.0.7 request.
 */
export function requestFor(dids: string[]): Ivoa.ExecutionRequest {
  const example = parseDocument(
    readFileSync(join(EXAMPLES, 'example-009-001-offerset-request.yaml'), 'utf8'),
    'yaml',
  ) as {
    data: Record<string, unknown>[];
    volumes: Record<string, unknown>[];
  };
  const template = example.data[0]!;
  example.data = dids.map((did, i) => {
    const [namespace, objectname] = did.split(':');
    const size = WORLD.catalogue?.dids?.find((d) => `${d.namespace}:${d.name}` === did)?.sizeBytes;
    return {
      ...template,
      name: `data-${i + 1}`,
      skao: {
        ...(template['skao'] as object),
        namespace,
        objectname,
        ...(size === undefined ? {} : { datasize: size }),
      },
    };
  });
  example.volumes = [
    { ...example.volumes[0]!, path: '/data', resources: example.data.map((d) => d['name']) },
  ];
  const upgraded = upgradeExecutionRequest(example);
  return upgraded.document as Ivoa.ExecutionRequest;
}

/** POST /direct; the step document as the broker answers it. */
export async function direct(brokerUrl: string, request: Ivoa.ExecutionRequest) {
  const response = await fetch(`${brokerUrl}/direct`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(request),
  });
  if (response.status !== 200)
    throw new Error(`POST /direct answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Ivoa.ScheduledExecutionSession & { meta: { uuid: string } };
}

export async function getStep(brokerUrl: string, id: string) {
  const response = await fetch(`${brokerUrl}/sessions/${id}`, { headers: { accept: 'application/json' } });
  return (await response.json()) as Ivoa.ScheduledExecutionSession;
}

export async function cancelStep(brokerUrl: string, id: string) {
  const response = await fetch(`${brokerUrl}/sessions/${id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ kind: 'uri:enum-value-update', path: 'phase', value: 'CANCELLED' }),
  });
  if (!response.ok) throw new Error(`cancel answered ${response.status}: ${await response.text()}`);
}

export interface StagingView {
  resourceName: string;
  source: string;
  state: string;
  bytesDone: number;
  bytesTotal: number | null;
  fraction: number | null;
  rate: number | null;
  estimatedSecondsLeft: number | null;
  localPath: string | null;
  lifetimeSeconds: number | null;
  expiresAt: string | null;
  message: string | null;
  jobId: string | null;
}

const STAGING_FIELDS =
  'resourceName source state bytesDone bytesTotal fraction rate estimatedSecondsLeft localPath lifetimeSeconds expiresAt message jobId';

/** A GraphQL request to the worker's subgraph, as the gateway makes it (dev identity). */
export async function graphql(workerUrl: string, query: string, variables: object, user = 'dev') {
  const response = await fetch(`${workerUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer dev:${user}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string }[] };
}

/** `ExecutionStep.dataStaging` through `_entities`, the way the gateway resolves it. */
export async function dataStaging(workerUrl: string, stepId: string, user = 'dev'): Promise<StagingView[]> {
  const result = await graphql(
    workerUrl,
    `query ($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { dataStaging { ${STAGING_FIELDS} } } } }`,
    { r: [{ __typename: 'ExecutionStep', id: stepId }] },
    user,
  );
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return (result.data!['_entities'] as { dataStaging: StagingView[] }[])[0]!.dataStaging;
}

export async function extendDataLifetime(workerUrl: string, stepId: string, seconds: number, user = 'dev') {
  return graphql(
    workerUrl,
    `mutation ($s: ID!, $n: Int!) { extendDataLifetime(stepId: $s, seconds: $n) { ${STAGING_FIELDS} } }`,
    { s: stepId, n: seconds },
    user,
  );
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}
