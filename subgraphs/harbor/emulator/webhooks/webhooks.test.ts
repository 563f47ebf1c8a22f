import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HarborClient } from '../../src/harbor/client.ts';
import type { WebhookPayload } from '../../src/harbor/webhooks.ts';
import { parseWebhookPayload, webhookAuthorized } from '../../src/harbor/webhooks.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import type { HarborEmulator } from '../index.ts';
import { startHarborEmulator } from '../index.ts';
import type { WebhookReceiver } from '../testing/receiver.ts';
import { startWebhookReceiver } from '../testing/receiver.ts';

const admin = { username: 'admin', password: 'Harbor12345' };
const retry = { attempts: 1, timeoutMs: 3000 };

let emulator: HarborEmulator;
let harbor: HarborClient;
let registry: RegistryClient;
let receiver: WebhookReceiver;
let cloud: WebhookReceiver;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tagOf = (hook: { body: unknown }) => (hook.body as WebhookPayload).event_data?.resources?.[0]?.tag;

/** Pulls a tag: each manifest GET is one PULL_ARTIFACT event. */
async function pull(tag: string): Promise<void> {
  await registry.getManifest('events/app', tag);
}

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  cloud = await startWebhookReceiver();
  emulator = await startHarborEmulator({
    timing: { webhookRetryDelayMs: 20, webhookMaxRetries: 2 },
    projects: [{ name: 'events', public: true }],
    localImages: ['1', '2', '3', '4'].map((tag) => ({ image: `events/app:${tag}`, size: 100 + Number(tag) })),
  });
  harbor = new HarborClient({ url: emulator.url, credentials: admin, retry });
  registry = new RegistryClient({ baseUrl: emulator.url, retry });
  await harbor.createWebhookPolicy('events', {
    name: 'default',
    enabled: true,
    event_types: ['PULL_ARTIFACT', 'DELETE_ARTIFACT'],
    targets: [{ type: 'http', address: receiver.url, auth_header: 'Token abc' }],
  });
});

afterAll(async () => {
  await emulator.close();
  await receiver.close();
  await cloud.close();
});

async function quiet(): Promise<void> {
  while (emulator.stats().webhooks.pending > 0) await sleep(5);
}

beforeEach(async () => {
  emulator.setFaults({});
  await quiet();
  emulator.resetStats();
  receiver.received.length = 0;
  receiver.failNext(0);
});

describe('webhook policies', () => {
  it('validates policies, naming the field at fault', async () => {
    await expect(
      harbor.createWebhookPolicy('events', {
        name: 'x',
        enabled: true,
        event_types: ['NOPE' as never],
        targets: [{ type: 'http', address: receiver.url }],
      }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/event_types: NOPE/),
    });
    await expect(
      harbor.createWebhookPolicy('events', {
        name: 'x',
        enabled: true,
        event_types: ['PUSH_ARTIFACT'],
        targets: [{ type: 'http', address: 'not a url' }],
      }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/targets\[0\]\.address/),
    });
    const listed = await harbor.listWebhookPolicies('events');
    expect(listed.map((p) => p.name)).toEqual(['default']);
    expect(listed[0]!.targets[0]).toMatchObject({
      auth_header: 'Token abc',
      payload_format: 'Default',
      skip_cert_verify: false,
    });
  });

  it('delivers PULL_ARTIFACT in the Default format with the auth_header', async () => {
    await pull('1');
    const [hook] = await receiver.waitFor((r) => r.length === 1);
    expect(webhookAuthorized(hook!.headers.authorization, 'Token abc')).toBe(true);
    expect(webhookAuthorized(hook!.headers.authorization, 'Token abd')).toBe(false);
    const payload = parseWebhookPayload(hook!.body);
    expect(payload).toMatchObject({ type: 'PULL_ARTIFACT', operator: 'anonymous' });
    expect(payload.event_data?.repository).toEqual(
      expect.objectContaining({
        name: 'app',
        namespace: 'events',
        repo_full_name: 'events/app',
        repo_type: 'public',
      }),
    );
  });

  it('delivers CloudEvents when the target asks for them', async () => {
    await harbor.createWebhookPolicy('events', {
      name: 'cloud',
      enabled: true,
      event_types: ['DELETE_ARTIFACT'],
      targets: [{ type: 'http', address: cloud.url, payload_format: 'CloudEvents' }],
    });
    emulator.addLocalImage({ image: 'events/doomed:1', size: 10 });
    const deleted = await fetch(`${emulator.url}/api/v2.0/projects/events/repositories/doomed/artifacts/1`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from('admin:Harbor12345').toString('base64')}` },
    });
    expect(deleted.status).toBe(200);
    const [hook] = await cloud.waitFor((r) => r.length === 1);
    expect(hook!.headers['content-type']).toBe('application/cloudevents+json');
    expect(hook!.headers.authorization).toBeUndefined();
    expect(hook!.body).toMatchObject({
      specversion: '1.0',
      type: 'harbor.artifact.deleted',
      source: expect.stringMatching(/^\/projects\/\d+\/webhook\/policies\/\d+$/),
    });
    expect(parseWebhookPayload(hook!.body)).toMatchObject({
      type: 'DELETE_ARTIFACT',
      event_data: { resources: [{ tag: '1' }] },
    });
    await receiver.waitFor((r) => r.some((h) => (h.body as WebhookPayload).type === 'DELETE_ARTIFACT'));
  });

  it('gives up after the configured retries', async () => {
    receiver.failNext(10);
    await pull('2');
    await quiet();
    expect(emulator.stats().webhooks).toMatchObject({
      attempts: 3,
      failedAttempts: 3,
      abandoned: 1,
      delivered: 0,
    });
  });
});

describe('webhook fault switches', () => {
  it('drops deliveries', async () => {
    emulator.setFaults({ webhooks: { drop: { rate: 1 } } });
    await pull('1');
    await pull('2');
    await sleep(100);
    expect(receiver.received).toHaveLength(0);
    expect(emulator.stats().webhooks).toMatchObject({ dropped: 2, attempts: 0 });
  });

  it('duplicates deliveries with the same payload', async () => {
    emulator.setFaults({ webhooks: { duplicate: { rate: 1, count: 1 } } });
    await pull('3');
    await receiver.waitFor((r) => r.length === 2);
    expect(receiver.received[0]!.body).toEqual(receiver.received[1]!.body);
    await quiet();
    expect(receiver.received).toHaveLength(2);
  });

  it('delays deliveries', async () => {
    emulator.setFaults({ webhooks: { delay: { rate: 1, delayMs: 250 } } });
    const started = Date.now();
    await pull('1');
    await receiver.waitFor((r) => r.length === 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(240);
  });

  it('reorders a delivery behind the next one to the same target', async () => {
    emulator.setFaults({ webhooks: { reorder: { rate: 1, count: 1 } } });
    await pull('1');
    await pull('2');
    await receiver.waitFor((r) => r.length === 2);
    expect(receiver.received.map(tagOf)).toEqual(['2', '1']);
    expect(emulator.stats().faults.reorder).toBe(1);
  });
});
