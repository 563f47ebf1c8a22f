import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HarborClient } from '../../src/harbor/client.ts';
import type { ReplicationExecution } from '../../src/harbor/types.ts';
import type { WebhookPayload } from '../../src/harbor/webhooks.ts';
import { parseWebhookPayload } from '../../src/harbor/webhooks.ts';
import { IVOA_EXAMPLE_IMAGES } from '../fixtures.ts';
import type { HarborEmulator, HarborEmulatorOptions } from '../index.ts';
import { startHarborEmulator } from '../index.ts';
import type { WebhookReceiver } from '../testing/receiver.ts';
import { startWebhookReceiver } from '../testing/receiver.ts';

const MB = 1024 * 1024;
const admin = { username: 'admin', password: 'Harbor12345' };
const AUTH_HEADER = 'Bearer webhook-s3cret';
const EXECUTION_POLL = 'GET /api/v2.0/replication/executions/{id}';

const timing: HarborEmulatorOptions['timing'] = {
  bandwidthBytesPerSecond: 10 * MB,
  replicationOverheadMs: 20,
  taskScheduleMs: 10,
  jitter: 0.05,
  webhookRetryDelayMs: 30,
};

let emulator: HarborEmulator;
let harbor: HarborClient;
let receiver: WebhookReceiver;
let registryId: number;

async function setUpWorld(target: HarborEmulator): Promise<{ client: HarborClient; registryId: number }> {
  const client = new HarborClient({
    url: target.url,
    credentials: admin,
    retry: { attempts: 2, baseDelayMs: 5 },
  });
  const id = await client.createRegistry({ name: 'ghcr', type: 'github-ghcr', url: 'https://ghcr.io' });
  await client.createWebhookPolicy('skaha', {
    name: 'worker',
    enabled: true,
    event_types: ['REPLICATION', 'PUSH_ARTIFACT'],
    targets: [{ type: 'http', address: receiver.url, auth_header: AUTH_HEADER, skip_cert_verify: false }],
  });
  return { client, registryId: id };
}

let policyCounter = 0;
async function pullPolicy(
  client: HarborClient,
  source: number,
  repository: string,
  tag: string,
  extra: Record<string, unknown> = {},
): Promise<number> {
  return client.createReplicationPolicy({
    name: `pull-${++policyCounter}`,
    description: `pull ${repository}`,
    src_registry: { id: source },
    dest_namespace: 'skaha',
    trigger: { type: 'manual' },
    filters: [
      { type: 'name', value: repository },
      { type: 'tag', value: tag },
      { type: 'resource', value: 'image' },
    ],
    override: true,
    enabled: true,
    ...extra,
  });
}

function replicationEvents(executionId: number, status?: string): (received: { body: unknown }[]) => boolean {
  return (received) =>
    received.some((hook) => {
      const payload = hook.body as WebhookPayload;
      return (
        payload.type === 'REPLICATION' &&
        payload.event_data?.replication?.execution_id === executionId &&
        (!status || payload.event_data.replication.job_status === status)
      );
    });
}

function eventsOf(executionId: number): WebhookPayload[] {
  return receiver.received
    .map((hook) => hook.body as WebhookPayload)
    .filter((p) => p.type === 'REPLICATION' && p.event_data?.replication?.execution_id === executionId);
}

async function settle(client: HarborClient, id: number): Promise<ReplicationExecution> {
  for (;;) {
    const execution = await client.getReplicationExecution(id);
    if (execution && execution.status !== 'InProgress') return execution;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  emulator = await startHarborEmulator({
    timing,
    projects: [{ name: 'skaha' }],
    upstreamImages: [
      { ...IVOA_EXAMPLE_IMAGES.webtop, size: 2 * MB, layers: 4 },
      { image: 'ghcr.io/ivoa/small:1', size: MB / 2, layers: 1 },
      { image: 'ghcr.io/ivoa/big:1', size: 6 * MB, layers: 3 },
      { image: 'ghcr.io/ivoa/huge:1', size: 200 * MB, layers: 3 },
    ],
  });
  ({ client: harbor, registryId } = await setUpWorld(emulator));
});

afterAll(async () => {
  await emulator.close();
  await receiver.close();
});

beforeEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

describe('pull replication', () => {
  it('copies an image into the local project and says so by webhook, with no execution polling', async () => {
    const policyId = await pullPolicy(harbor, registryId, 'ivoa/oligia-webtop', 'ubuntu-2022.01.13');
    const executionId = await harbor.startReplication(policyId);
    await receiver.waitFor(replicationEvents(executionId, 'Success'));
    await receiver.waitFor((received) =>
      received.some((h) => (h.body as WebhookPayload).type === 'PUSH_ARTIFACT'),
    );
    // The webhook alone told us: nobody asked Harbor about the execution.
    expect(emulator.stats().requests.byRoute[EXECUTION_POLL]).toBeUndefined();

    const statuses = eventsOf(executionId).map((p) => p.event_data?.replication?.job_status);
    expect(statuses).toEqual(['Running', 'Success']);
    const hook = receiver.received.find(
      (h) => (h.body as WebhookPayload).event_data?.replication?.job_status === 'Success',
    )!;
    expect(hook.headers.authorization).toBe(AUTH_HEADER);
    expect(hook.headers['content-type']).toBe('application/json');
    const payload = parseWebhookPayload(hook.body);
    expect(payload.operator).toBe('admin');
    expect(Math.abs(payload.occur_at - Date.now() / 1000)).toBeLessThan(5);
    expect(payload.event_data?.replication).toMatchObject({
      job_status: 'Success',
      description: 'pull ivoa/oligia-webtop',
      artifact_type: 'image',
      override_mode: true,
      trigger_type: 'MANUAL',
      policy_creator: 'admin',
      execution_id: executionId,
      src_resource: {
        registry_name: 'ghcr',
        registry_type: 'github-ghcr',
        endpoint: 'https://ghcr.io',
        namespace: 'ivoa',
      },
      dest_resource: { registry_type: 'harbor', endpoint: emulator.url, namespace: 'skaha' },
      successful_artifact: [
        {
          type: 'image',
          status: 'Success',
          name_tag: 'oligia-webtop [1 item(s) in total]',
          references: ['ubuntu-2022.01.13'],
        },
      ],
    });
    expect(payload.event_data?.replication?.failed_artifact).toBeUndefined();

    const push = receiver.received
      .map((h) => h.body as WebhookPayload)
      .find((p) => p.type === 'PUSH_ARTIFACT')!;
    expect(push.event_data?.resources?.[0]).toMatchObject({
      digest: IVOA_EXAMPLE_IMAGES.webtop.digest,
      tag: 'ubuntu-2022.01.13',
    });
    expect(push.event_data?.repository).toMatchObject({
      name: 'oligia-webtop',
      namespace: 'skaha',
      repo_full_name: 'skaha/oligia-webtop',
      repo_type: 'private',
    });

    const artifact = await harbor.getArtifact('skaha', 'oligia-webtop', IVOA_EXAMPLE_IMAGES.webtop.digest);
    expect(artifact?.size).toBeGreaterThan(2 * MB);
    expect(await harbor.getReplicationExecution(executionId)).toMatchObject({
      status: 'Succeed',
      total: 1,
      succeed: 1,
      failed: 0,
      in_progress: 0,
    });
    const tasks = await harbor.listReplicationTasks(executionId);
    expect(tasks).toMatchObject([
      {
        status: 'Succeed',
        operation: 'copy',
        resource_type: 'image',
        src_resource: 'ivoa/oligia-webtop [1 item(s) in total]',
        dst_resource: 'skaha/oligia-webtop [1 item(s) in total]',
      },
    ]);
  });

  it('takes time proportional to the bytes copied', async () => {
    const small = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/small', '1'));
    const big = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/big', '1'));
    const started = Date.now();
    await receiver.waitFor(replicationEvents(small, 'Success'));
    const smallDone = Date.now() - started;
    await receiver.waitFor(replicationEvents(big, 'Success'));
    const bigDone = Date.now() - started;
    // 0.5 MB vs 6 MB at 10 MB/s: about 70 ms vs 630 ms.
    expect(bigDone - smallDone).toBeGreaterThan(350);
  });

  it('keeps the namespace path when dest_namespace_replace_count is 0', async () => {
    const id = await harbor.startReplication(
      await pullPolicy(harbor, registryId, 'ivoa/small', '1', { dest_namespace_replace_count: 0 }),
    );
    await receiver.waitFor(replicationEvents(id, 'Success'));
    expect(await harbor.getArtifact('skaha', 'ivoa/small', '1')).toBeDefined();
  });

  it('ends Succeed with nothing copied when the filters match nothing, as Harbor does', async () => {
    const id = await harbor.startReplication(
      await pullPolicy(harbor, registryId, 'ivoa/small', 'no-such-tag'),
    );
    expect(await settle(harbor, id)).toMatchObject({
      status: 'Succeed',
      total: 0,
      status_text: 'no resources need to be replicated',
    });
  });

  it('stops an execution on PUT, announcing Stopped', async () => {
    const id = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/huge', '1'));
    await receiver.waitFor(replicationEvents(id, 'Running'));
    await harbor.stopReplicationExecution(id);
    expect(await harbor.getReplicationExecution(id)).toMatchObject({ status: 'Stopped', stopped: 1 });
    await receiver.waitFor(replicationEvents(id, 'Stopped'));
    expect(await harbor.getArtifact('skaha', 'huge', '1')).toBeUndefined();
  });

  it('validates policies as Harbor does, naming the rule', async () => {
    await expect(
      harbor.createReplicationPolicy({ name: 'neither', dest_namespace: 'skaha' }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/either src_registry or dest_registry/),
    });
    await expect(
      harbor.createReplicationPolicy({
        name: 'cron',
        src_registry: { id: registryId },
        trigger: { type: 'scheduled', trigger_settings: { cron: '5 0 * * * *' } },
      }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/1st field/) });
    await expect(
      harbor.createReplicationPolicy({
        name: 'bad-filter',
        src_registry: { id: registryId },
        filters: [{ type: 'colour', value: 'x' }],
      }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/filters\[0\]\.type/),
    });
    await expect(harbor.startReplication(9999)).rejects.toMatchObject({ status: 404 });
  });

  it('retries a webhook delivery the target refused', async () => {
    receiver.failNext(2, 503);
    const id = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/small', '1'));
    await receiver.waitFor(replicationEvents(id, 'Success'));
    while (emulator.stats().webhooks.pending > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const stats = emulator.stats().webhooks;
    expect(stats.failedAttempts).toBe(2);
    expect(stats.delivered).toBe(stats.attempts - 2);
    expect(stats.abandoned).toBe(0);
  });
});

describe('failures and restarts', () => {
  it('ends Failed with an Error webhook carrying failed_artifact when the copy fails', async () => {
    const failing = await startHarborEmulator({
      timing,
      replicationFailureRate: 1,
      projects: [{ name: 'skaha' }],
      upstreamImages: [{ image: 'ghcr.io/ivoa/small:1', size: MB / 4 }],
    });
    try {
      const { client, registryId: source } = await setUpWorld(failing);
      const id = await client.startReplication(await pullPolicy(client, source, 'ivoa/small', '1'));
      await receiver.waitFor(replicationEvents(id, 'Error'));
      const error = eventsOf(id).find((p) => p.event_data?.replication?.job_status === 'Error')!;
      expect(error.event_data?.replication?.failed_artifact?.[0]).toMatchObject({
        status: 'Error',
        name_tag: 'small [1 item(s) in total]',
        references: ['1'],
      });
      expect(error.event_data?.replication?.failed_artifact?.[0]?.fail_reason).toMatch(/injected/);
      expect(error.event_data?.replication?.successful_artifact).toBeUndefined();
      expect(await client.getReplicationExecution(id)).toMatchObject({ status: 'Failed', failed: 1 });
    } finally {
      await failing.close();
    }
  });

  it('fails running executions on restart, keeps stored artifacts, and loses queued webhooks', async () => {
    const done = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/small', '1'));
    await receiver.waitFor(replicationEvents(done, 'Success'));
    const running = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/huge', '1'));
    await receiver.waitFor(replicationEvents(running, 'Running'));
    // A delivery held back by a long delay is still queued when Harbor goes down.
    emulator.setFaults({ webhooks: { delay: { rate: 1, count: 1, delayMs: 60_000 } } });
    const other = await harbor.startReplication(await pullPolicy(harbor, registryId, 'ivoa/big', '1'));
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(emulator.stats().webhooks.pending).toBeGreaterThan(0);

    await emulator.restart({ downtimeMs: 50 });
    expect(await harbor.getReplicationExecution(running)).toMatchObject({ status: 'Failed', failed: 1 });
    expect(await harbor.getReplicationExecution(other)).toMatchObject({ status: 'Failed' });
    await receiver.waitFor(replicationEvents(running, 'Error'));
    await receiver.waitFor(replicationEvents(other, 'Error'));
    // The delayed Running event of `other` died with the restart; its Error came after.
    expect(eventsOf(other).map((p) => p.event_data?.replication?.job_status)).toEqual(['Error']);
    expect(emulator.stats().faults.delay).toBe(1);
    expect(await harbor.getArtifact('skaha', 'small', '1')).toBeDefined();
    expect(await harbor.getReplicationExecution(done)).toMatchObject({ status: 'Succeed' });
  });
});

describe('replicating from another Harbor over HTTP', () => {
  let upstream: HarborEmulator;
  afterEach(async () => {
    await upstream?.close();
  });

  it('pulls an image from a second emulator through its registry API', async () => {
    upstream = await startHarborEmulator({ projects: [{ name: 'library', public: true }] });
    const image = upstream.addLocalImage({
      image: 'library/tool:3',
      platforms: [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux' },
      ],
      size: 200_000,
    });
    const source = await harbor.createRegistry({
      name: 'peer',
      type: 'harbor',
      url: upstream.url,
      credential: { type: 'basic', access_key: 'admin', access_secret: 'Harbor12345' },
    });
    expect((await harbor.getRegistry(source))?.credential?.access_secret).toBe('*****');
    const id = await harbor.startReplication(await pullPolicy(harbor, source, 'library/tool', '3'));
    await receiver.waitFor(replicationEvents(id, 'Success'));
    const artifact = await harbor.getArtifact('skaha', 'tool', '3');
    expect(artifact?.digest).toBe(image.digest);
    expect(artifact?.size).toBe(image.size);
    expect(artifact?.references?.map((r) => r.child_digest)).toEqual(image.platformDigests);
    expect(upstream.stats().requests.byRoute['GET /v2/{name}/manifests/{reference}']).toBeGreaterThanOrEqual(
      3,
    );
  });
});
