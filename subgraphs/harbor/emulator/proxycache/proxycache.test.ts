import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HarborClient } from '../../src/harbor/client.ts';
import type { WebhookPayload } from '../../src/harbor/webhooks.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { IVOA_EXAMPLE_IMAGES } from '../fixtures.ts';
import type { AddedImage, HarborEmulator } from '../index.ts';
import { startHarborEmulator } from '../index.ts';
import type { WebhookReceiver } from '../testing/receiver.ts';
import { startWebhookReceiver } from '../testing/receiver.ts';

const MB = 1024 * 1024;
const admin = { username: 'admin', password: 'Harbor12345' };
const retry = { attempts: 2, baseDelayMs: 5, timeoutMs: 3000 };

let emulator: HarborEmulator;
let harbor: HarborClient;
let registry: RegistryClient;
let receiver: WebhookReceiver;
let multi: AddedImage;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  emulator = await startHarborEmulator({
    timing: { bandwidthBytesPerSecond: 10 * MB, proxyOverheadMs: 20, jitter: 0.05 },
    upstreamImages: [
      { ...IVOA_EXAMPLE_IMAGES.webtop, size: 2 * MB, layers: 3 },
      { image: 'ghcr.io/ivoa/slow:1', size: 100 * MB },
      { image: 'docker.io/library/ubuntu:24.04', size: 100_000, format: 'docker' },
    ],
    projects: [
      {
        name: 'ghcr',
        public: true,
        proxy: { registryName: 'ghcr.io', type: 'github-ghcr', url: 'https://ghcr.io' },
      },
      {
        name: 'dockerhub',
        public: true,
        proxy: { registryName: 'hub', type: 'docker-hub', url: 'https://hub.docker.com' },
      },
    ],
  });
  multi = emulator.addUpstreamImage({
    image: 'ghcr.io/ivoa/multi:1',
    platforms: [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux' },
    ],
    size: MB / 2,
  });
  harbor = new HarborClient({ url: emulator.url, credentials: admin, retry });
  // The stand-in's digest is declared, so its bytes cannot hash to it.
  registry = new RegistryClient({ baseUrl: emulator.url, retry, verifyDigests: false });
  await harbor.createWebhookPolicy('ghcr', {
    name: 'cache',
    enabled: true,
    event_types: ['PUSH_ARTIFACT', 'PULL_ARTIFACT'],
    targets: [{ type: 'http', address: receiver.url, auth_header: 'Basic d29ya2VyOnB3' }],
  });
});

afterAll(async () => {
  await emulator.close();
  await receiver.close();
});

beforeEach(() => emulator.resetStats());

describe('proxy-cache projects', () => {
  it('serves the first pull from upstream at once and lists the artifact only once cached', async () => {
    const pulled = await registry.getManifest('ghcr/ivoa/oligia-webtop', 'ubuntu-2022.01.13');
    expect(pulled?.digest).toBe(IVOA_EXAMPLE_IMAGES.webtop.digest);
    expect(
      await harbor.getArtifact('ghcr', 'ivoa/oligia-webtop', IVOA_EXAMPLE_IMAGES.webtop.digest),
    ).toBeUndefined();

    const [push] = (
      await receiver.waitFor((r) => r.some((h) => (h.body as WebhookPayload).type === 'PUSH_ARTIFACT'))
    ).filter((h) => (h.body as WebhookPayload).type === 'PUSH_ARTIFACT');
    expect(push!.headers.authorization).toBe('Basic d29ya2VyOnB3');
    expect((push!.body as WebhookPayload).event_data?.resources?.[0]).toMatchObject({
      digest: IVOA_EXAMPLE_IMAGES.webtop.digest,
      tag: 'ubuntu-2022.01.13',
      resource_url: `${new URL(emulator.url).host}/ghcr/ivoa/oligia-webtop:ubuntu-2022.01.13`,
    });
    const artifact = await harbor.getArtifact('ghcr', 'ivoa/oligia-webtop', 'ubuntu-2022.01.13');
    expect(artifact?.digest).toBe(IVOA_EXAMPLE_IMAGES.webtop.digest);
    expect(artifact?.size).toBeGreaterThan(2 * MB);
    await receiver.waitFor((r) => r.some((h) => (h.body as WebhookPayload).type === 'PULL_ARTIFACT'));
    expect(emulator.stats().proxyCache).toMatchObject({ pulls: 1, cached: 1, inFlight: 0 });
    // A second pull is served from the cache after revalidating the tag upstream.
    expect((await registry.getManifest('ghcr/ivoa/oligia-webtop', 'ubuntu-2022.01.13'))?.digest).toBe(
      IVOA_EXAMPLE_IMAGES.webtop.digest,
    );
    expect(emulator.stats().proxyCache.pulls).toBe(1);
  });

  it('answers a HEAD from upstream without caching anything', async () => {
    const head = await registry.headManifest('ghcr/ivoa/multi', '1');
    expect(head?.digest).toBe(multi.digest);
    await sleep(150);
    expect(await harbor.getArtifact('ghcr', 'ivoa/multi', '1')).toBeUndefined();
    expect(emulator.stats().proxyCache.pulls).toBe(0);
  });

  it('resolves a multi-arch image through the proxy and caches the whole index', async () => {
    const image = await registry.resolveImage('ghcr/ivoa/multi', '1', {
      platform: { architecture: 'arm64', os: 'linux' },
    });
    expect(image?.digest).toBe(multi.digest);
    expect(image?.manifestDigest).toBe(multi.platformDigests[1]);
    for (let i = 0; i < 100 && !(await harbor.getArtifact('ghcr', 'ivoa/multi', '1')); i++) await sleep(20);
    const artifact = await harbor.getArtifact('ghcr', 'ivoa/multi', '1');
    expect(artifact?.references?.map((r) => r.child_digest)).toEqual(multi.platformDigests);
    expect(artifact?.size).toBe(multi.size);
  });

  it('answers 404 for what upstream does not have', async () => {
    expect(await registry.getManifest('ghcr/ivoa/oligia-webtop', 'no-such-tag')).toBeUndefined();
    expect(await registry.getManifest('ghcr/nobody/nothing', 'latest')).toBeUndefined();
  });

  it('redirects a Docker Hub official image to library/, as Harbor does', async () => {
    const image = await registry.resolveImage('dockerhub/ubuntu', '24.04');
    expect(image?.manifestMediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(emulator.stats().requests.byRoute['GET /v2/{name}/manifests/{reference}']).toBe(2);
  });

  it('loses an unfinished caching on restart; the next pull starts it again', async () => {
    while (emulator.stats().proxyCache.inFlight > 0) await sleep(10);
    emulator.resetStats();
    await registry.getManifest('ghcr/ivoa/slow', '1');
    expect(emulator.stats().proxyCache.inFlight).toBe(1);
    await emulator.restart();
    expect(emulator.stats().proxyCache.inFlight).toBe(0);
    expect(await harbor.getArtifact('ghcr', 'ivoa/slow', '1')).toBeUndefined();
    await registry.getManifest('ghcr/ivoa/slow', '1');
    expect(emulator.stats().proxyCache).toMatchObject({ pulls: 2, inFlight: 1 });
  });

  it('refuses pushes into a proxy project', async () => {
    const authed = new RegistryClient({ baseUrl: emulator.url, credentials: admin, retry });
    await expect(authed.pushBlob('ghcr/ivoa/mine', Buffer.from('data'))).rejects.toMatchObject({
      status: 403,
      code: 'DENIED',
    });
  });
});
