import { once } from 'node:events';
import { createServer } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AddedImage, HarborEmulator } from '../../emulator/index.ts';
import { startHarborEmulator } from '../../emulator/index.ts';
import { HarborClient } from '../harbor/client.ts';
import { parseChallenge } from './auth.ts';
import { RegistryClient, RegistryError } from './client.ts';
import { MediaType, sha256Digest } from './manifest.ts';

const admin = { username: 'admin', password: 'Harbor12345' };
const retry = { attempts: 2, baseDelayMs: 5, timeoutMs: 2000 };
const twoPlatforms = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
];

let emulator: HarborEmulator;
let oci: AddedImage;
let docker: AddedImage;
let secret: AddedImage;
let registry: RegistryClient;

beforeAll(async () => {
  emulator = await startHarborEmulator({
    projects: [
      { name: 'library', public: true },
      { name: 'secure', public: false },
    ],
  });
  oci = emulator.addLocalImage({
    image: 'library/alpine:3.20',
    platforms: twoPlatforms,
    size: 3000,
    layers: 3,
  });
  docker = emulator.addLocalImage({
    image: 'library/legacy:1',
    platforms: twoPlatforms,
    size: 1000,
    layers: 1,
    format: 'docker',
  });
  secret = emulator.addLocalImage({ image: 'secure/app:2', size: 4000, layers: 4 });
  registry = new RegistryClient({ baseUrl: emulator.url, retry });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

describe('manifests', () => {
  it('HEADs a manifest for its digest and media type', async () => {
    const head = await registry.headManifest('library/alpine', '3.20');
    expect(head).toMatchObject({ digest: oci.digest, mediaType: MediaType.ociIndex });
    expect(head!.size).toBeGreaterThan(0);
    expect((await registry.headManifest('library/alpine', oci.digest))?.digest).toBe(oci.digest);
    expect(await registry.headManifest('library/alpine', 'nope')).toBeUndefined();
    expect(emulator.stats().requests.byRoute['HEAD /v2/{name}/manifests/{reference}']).toBe(3);
  });

  it('GETs a manifest and checks its bytes against the digest', async () => {
    const fetched = await registry.getManifest('library/alpine', oci.platformDigests[1]!);
    expect(fetched?.manifest.kind).toBe('image');
    expect(sha256Digest(fetched!.bytes)).toBe(oci.platformDigests[1]);
    expect(await registry.getManifest('library/alpine', `sha256:${'0'.repeat(64)}`)).toBeUndefined();
  });

  it('reports a manifest whose bytes do not hash to the digest the registry claims', async () => {
    const declared = `sha256:${'1'.repeat(64)}`;
    emulator.addLocalImage({ image: 'library/standin:1', size: 100, layers: 1, digest: declared });
    await expect(registry.getManifest('library/standin', '1')).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    const trusting = new RegistryClient({ baseUrl: emulator.url, retry, verifyDigests: false });
    expect((await trusting.getManifest('library/standin', '1'))?.digest).toBe(declared);
    expect((await registry.headManifest('library/standin', declared))?.digest).toBe(declared);
  });
});

describe('resolveImage', () => {
  it('follows an OCI index to linux/amd64 by default and sums the image size', async () => {
    const image = await registry.resolveImage('library/alpine', '3.20');
    expect(image?.digest).toBe(oci.digest);
    expect(image?.index?.platforms.map((p) => p.architecture)).toEqual(['amd64', 'arm64']);
    expect(image?.manifestDigest).toBe(oci.platformDigests[0]);
    expect(image?.platform).toMatchObject({ architecture: 'amd64', os: 'linux' });
    expect(image?.layers).toHaveLength(3);
    expect(image?.layersSize).toBe(3000);
    const harbor = new HarborClient({ url: emulator.url, credentials: admin, retry });
    const child = await harbor.getArtifact('library', 'alpine', oci.platformDigests[0]!);
    // The same size Harbor reports for the platform image: manifest + config + layers.
    expect(image?.size).toBe(child?.size);
  });

  it('chooses another platform, with or without the variant, and from a Docker manifest list', async () => {
    expect(
      (
        await registry.resolveImage('library/alpine', '3.20', {
          platform: { architecture: 'arm64', os: 'linux' },
        })
      )?.manifestDigest,
    ).toBe(oci.platformDigests[1]);
    expect(
      (
        await registry.resolveImage('library/alpine', '3.20', {
          platform: { architecture: 'aarch64', os: 'linux', variant: 'v8' },
        })
      )?.manifestDigest,
    ).toBe(oci.platformDigests[1]);
    const legacy = await registry.resolveImage('library/legacy', '1');
    expect(legacy?.mediaType).toBe(MediaType.dockerManifestList);
    expect(legacy?.manifestMediaType).toBe(MediaType.dockerManifest);
    expect(legacy?.manifestDigest).toBe(docker.platformDigests[0]);
  });

  it('says which platforms exist when the wanted one does not', async () => {
    const error = await registry
      .resolveImage('library/alpine', '3.20', { platform: { architecture: 's390x', os: 'linux' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
    expect((error as Error).message).toMatch(/linux\/amd64, linux\/arm64\/v8/);
  });

  it('resolves a single-platform image to itself', async () => {
    const authed = new RegistryClient({ baseUrl: emulator.url, credentials: admin, retry });
    const image = await authed.resolveImage('secure/app', '2');
    expect(image?.index).toBeUndefined();
    expect(image?.digest).toBe(secret.digest);
    expect(image?.size).toBe(secret.size);
  });
});

describe('authentication', () => {
  it('answers a Bearer challenge with a token from the realm, and reuses the token', async () => {
    const authed = new RegistryClient({ baseUrl: emulator.url, credentials: admin, retry });
    expect((await authed.headManifest('secure/app', '2'))?.digest).toBe(secret.digest);
    expect((await authed.getManifest('secure/app', '2'))?.digest).toBe(secret.digest);
    const routes = emulator.stats().requests.byRoute;
    expect(routes['GET /service/token']).toBe(1);
    // One 401 answered by the challenge, then two authorised calls.
    expect(
      (routes['HEAD /v2/{name}/manifests/{reference}'] ?? 0) +
        (routes['GET /v2/{name}/manifests/{reference}'] ?? 0),
    ).toBe(3);
  });

  it('fails with UNAUTHORIZED on a private repository without credentials', async () => {
    await expect(registry.headManifest('secure/app', '2')).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    });
  });

  it('uses a robot account: pull granted, push refused', async () => {
    const harbor = new HarborClient({ url: emulator.url, credentials: admin, retry });
    const robot = await harbor.createRobot({
      name: 'puller',
      level: 'project',
      duration: 30,
      permissions: [
        { kind: 'project', namespace: 'secure', access: [{ resource: 'repository', action: 'pull' }] },
      ],
    });
    const client = new RegistryClient({
      baseUrl: emulator.url,
      credentials: { username: robot.name, password: robot.secret },
      retry,
    });
    expect((await client.resolveImage('secure/app', '2'))?.digest).toBe(secret.digest);
    await expect(client.pushBlob('secure/app', Buffer.from('x'))).rejects.toMatchObject({ status: 401 });
  });

  it('sends Basic credentials when a registry asks for them, and up front afterwards', async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256Digest('{}'), size: 2 },
      layers: [],
    });
    const seen: (string | undefined)[] = [];
    const server = createServer((request, response) => {
      seen.push(request.headers.authorization);
      if (request.headers.authorization !== `Basic ${Buffer.from('me:pw').toString('base64')}`) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      response
        .writeHead(200, {
          'content-type': MediaType.ociManifest,
          'docker-content-digest': sha256Digest(body),
        })
        .end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as { port: number }).port;
      const client = new RegistryClient({
        baseUrl: `http://127.0.0.1:${port}`,
        credentials: { username: 'me', password: 'pw' },
        retry,
      });
      expect((await client.getManifest('x/y', 'v1'))?.digest).toBe(sha256Digest(body));
      expect((await client.getManifest('x/y', 'v1'))?.digest).toBe(sha256Digest(body));
      expect(seen.map((header) => header?.split(' ')[0])).toEqual([undefined, 'Basic', 'Basic']);
    } finally {
      server.close();
    }
  });

  it('reads challenges with quoted, comma-bearing values', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://h/service/token',
        service: 'harbor-registry',
        scope: 'repository:a/b:pull,push',
      },
    });
    expect(parseChallenge('Basic realm=x')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenge(null)).toBeUndefined();
  });
});

describe('pushing', () => {
  it('pushes blobs, two image manifests and an index, which Harbor then lists with its size', async () => {
    const authed = new RegistryClient({ baseUrl: emulator.url, credentials: admin, retry });
    const children = [];
    for (const architecture of ['amd64', 'arm64']) {
      const config = Buffer.from(
        JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
      );
      const layer = Buffer.from(`layer for ${architecture}`.repeat(50));
      const configDigest = await authed.pushBlob('library/pushed', config);
      const layerDigest = await authed.pushBlob('library/pushed', layer);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.byteLength },
          layers: [{ mediaType: MediaType.ociLayer, digest: layerDigest, size: layer.byteLength }],
        }),
      );
      const digest = await authed.pushManifest(
        'library/pushed',
        sha256Digest(manifest),
        manifest,
        MediaType.ociManifest,
      );
      children.push({
        mediaType: MediaType.ociManifest,
        digest,
        size: manifest.byteLength,
        platform: { architecture, os: 'linux' },
      });
      expect(Buffer.from((await authed.getBlob('library/pushed', layerDigest))!).equals(layer)).toBe(true);
    }
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: children }),
    );
    const indexDigest = await authed.pushManifest('library/pushed', 'v1', index, MediaType.ociIndex);
    expect(indexDigest).toBe(sha256Digest(index));
    expect(await authed.listTags('library/pushed')).toEqual(['v1']);

    const image = await authed.resolveImage('library/pushed', 'v1', {
      platform: { architecture: 'arm64', os: 'linux' },
    });
    expect(image?.manifestDigest).toBe(children[1]!.digest);
    const artifact = await new HarborClient({ url: emulator.url, credentials: admin, retry }).getArtifact(
      'library',
      'pushed',
      'v1',
    );
    expect(artifact?.digest).toBe(indexDigest);
    expect(artifact?.extra_attrs).toEqual({});
    const sizes = await Promise.all(children.map((c) => authed.resolveImage('library/pushed', c.digest)));
    expect(artifact?.size).toBe(index.byteLength + sizes.reduce((sum, s) => sum + s!.size, 0));
  });

  it('refuses a manifest whose blobs were never uploaded', async () => {
    const authed = new RegistryClient({ baseUrl: emulator.url, credentials: admin, retry });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha256Digest('missing'), size: 7 },
        layers: [],
      }),
    );
    await expect(
      authed.pushManifest('library/broken', 'v1', manifest, MediaType.ociManifest),
    ).rejects.toMatchObject({ status: 400, code: 'MANIFEST_BLOB_UNKNOWN' });
  });
});
