/**
 * The OCI client against the reference registry (distribution 2.8, Debian's docker-registry),
 * and the emulator replicating from it. Skipped with a warning when the binary is missing,
 * except under CI=true, where a missing binary is a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarborEmulator } from '../../emulator/index.ts';
import { HarborClient } from '../harbor/client.ts';
import { RegistryClient } from './client.ts';
import { MediaType, sha256Digest } from './manifest.ts';
import type { PushedImage } from './testing/images.ts';
import { pushTestImage } from './testing/images.ts';
import type { RealRegistry } from './testing/real-registry.ts';
import {
  DOCKER_REGISTRY_BINARY,
  DOCKER_REGISTRY_INSTALL,
  dockerRegistryAvailable,
  startRealRegistry,
} from './testing/real-registry.ts';

const available = dockerRegistryAvailable();
const ci = process.env.CI === 'true';
if (!available && !ci)
  console.warn(
    `\n[harbor] SKIPPING real-registry tests: ${DOCKER_REGISTRY_BINARY} not found. Install it with: ${DOCKER_REGISTRY_INSTALL}\n`,
  );

const retry = { attempts: 2, baseDelayMs: 10, timeoutMs: 5000 };
const twoPlatforms = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
];

function requireBinary(): void {
  if (!available)
    throw new Error(
      `CI=true but ${DOCKER_REGISTRY_BINARY} is missing; CI must run: ${DOCKER_REGISTRY_INSTALL}`,
    );
}

describe.skipIf(!available && !ci)('a real docker-registry without auth', () => {
  let real: RealRegistry;
  let client: RegistryClient;
  let multi: PushedImage;

  beforeAll(async () => {
    requireBinary();
    real = await startRealRegistry();
    client = new RegistryClient({ baseUrl: real.url, retry });
    multi = await pushTestImage(client, 'ivoa/webtop', '1.0', { platforms: twoPlatforms });
  });

  afterAll(async () => {
    await real?.close();
  });

  it('agrees with us on the digests of what we pushed', async () => {
    const head = await client.headManifest('ivoa/webtop', '1.0');
    expect(head).toMatchObject({ digest: multi.digest, mediaType: MediaType.ociIndex });
    const fetched = await client.getManifest('ivoa/webtop', multi.digest);
    expect(sha256Digest(fetched!.bytes)).toBe(multi.digest);
    expect(await client.listTags('ivoa/webtop')).toEqual(['1.0']);
    expect(await client.listRepositories()).toContain('ivoa/webtop');
  });

  it('resolves the index by platform and sums the image size', async () => {
    const amd64 = await client.resolveImage('ivoa/webtop', '1.0');
    expect(amd64).toMatchObject({
      digest: multi.digest,
      manifestDigest: multi.platforms[0]!.digest,
      size: multi.platforms[0]!.size,
      layersSize: multi.platforms[0]!.layersSize,
    });
    const arm64 = await client.resolveImage('ivoa/webtop', '1.0', {
      platform: { architecture: 'arm64', os: 'linux' },
    });
    expect(arm64?.manifestDigest).toBe(multi.platforms[1]!.digest);
    await expect(
      client.resolveImage('ivoa/webtop', '1.0', { platform: { architecture: 'ppc64le', os: 'linux' } }),
    ).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
  });

  it('resolves a Docker manifest list too', async () => {
    const pushed = await pushTestImage(client, 'legacy/tool', 'v2', {
      platforms: twoPlatforms,
      format: 'docker',
    });
    const image = await client.resolveImage('legacy/tool', 'v2');
    expect(image).toMatchObject({
      mediaType: MediaType.dockerManifestList,
      manifestMediaType: MediaType.dockerManifest,
      manifestDigest: pushed.platforms[0]!.digest,
    });
  });

  it('answers undefined for what is not there, and checks blob bytes', async () => {
    expect(await client.headManifest('ivoa/webtop', '9.9')).toBeUndefined();
    expect(await client.getManifest('ivoa/webtop', `sha256:${'a'.repeat(64)}`)).toBeUndefined();
    expect(await client.headManifest('nobody/here', 'latest')).toBeUndefined();
    const image = await client.resolveImage('ivoa/webtop', '1.0');
    const layer = await client.getBlob('ivoa/webtop', image!.layers[0]!.digest);
    expect(layer?.byteLength).toBe(image!.layers[0]!.size);
    expect(await client.headBlob('ivoa/webtop', image!.layers[1]!.digest)).toBe(image!.layers[1]!.size);
  });

  it('fails as the emulator does on a manifest with unknown blobs', async () => {
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha256Digest('absent'), size: 6 },
        layers: [],
      }),
    );
    await expect(
      client.pushManifest('ivoa/broken', 'v1', manifest, MediaType.ociManifest),
    ).rejects.toMatchObject({ status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
  });

  it('is a source the Harbor emulator can replicate from', async () => {
    const emulator = await startHarborEmulator({
      projects: [{ name: 'skaha' }],
      timing: { replicationOverheadMs: 10, taskScheduleMs: 5 },
    });
    try {
      const harbor = new HarborClient({
        url: emulator.url,
        credentials: { username: 'admin', password: 'Harbor12345' },
        retry,
      });
      const registryId = await harbor.createRegistry({
        name: 'real',
        type: 'docker-registry',
        url: real.url,
      });
      const policyId = await harbor.createReplicationPolicy({
        name: 'from-real',
        src_registry: { id: registryId },
        dest_namespace: 'skaha',
        dest_namespace_replace_count: 1,
        trigger: { type: 'manual' },
        filters: [
          { type: 'name', value: 'ivoa/**' },
          { type: 'tag', value: '1.*' },
        ],
        enabled: true,
      });
      const executionId = await harbor.startReplication(policyId);
      let execution = await harbor.getReplicationExecution(executionId);
      for (let i = 0; i < 200 && execution?.status === 'InProgress'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        execution = await harbor.getReplicationExecution(executionId);
      }
      expect(execution).toMatchObject({ status: 'Succeed', total: 1 });
      const artifact = await harbor.getArtifact('skaha', 'webtop', '1.0');
      expect(artifact?.digest).toBe(multi.digest);
      const child = await harbor.getArtifact('skaha', 'webtop', multi.platforms[1]!.digest);
      expect(child?.size).toBe(multi.platforms[1]!.size);
      expect(child?.extra_attrs).toMatchObject({ architecture: 'arm64', os: 'linux' });
    } finally {
      await emulator.close();
    }
  });
});

describe.skipIf(!available && !ci)('a real docker-registry with token auth', () => {
  let real: RealRegistry;

  beforeAll(async () => {
    requireBinary();
    real = await startRealRegistry({ auth: 'token' });
  });

  afterAll(async () => {
    await real?.close();
  });

  it('follows the Bearer challenge to the token service and back', async () => {
    const client = new RegistryClient({ baseUrl: real.url, credentials: real.credentials!, retry });
    const pushed = await pushTestImage(client, 'secure/app', '2');
    const image = await client.resolveImage('secure/app', '2');
    expect(image?.digest).toBe(pushed.digest);
    expect(image?.size).toBe(pushed.platforms[0]!.size);
    expect(real.tokenRequests()).toBeGreaterThanOrEqual(2);
  });

  it('reports UNAUTHORIZED without credentials or with wrong ones', async () => {
    const anonymous = new RegistryClient({ baseUrl: real.url, retry });
    await expect(anonymous.headManifest('secure/app', '2')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    });
    const wrong = new RegistryClient({
      baseUrl: real.url,
      credentials: { username: 'tester', password: 'nope' },
      retry,
    });
    await expect(wrong.headManifest('secure/app', '2')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    });
  });
});
