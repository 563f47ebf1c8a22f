import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HarborEmulator } from '../../emulator/index.ts';
import { startHarborEmulator } from '../../emulator/index.ts';
import { encodeRepositoryName, HarborClient, robotCredentials } from './client.ts';
import { HarborError } from './errors.ts';

const admin = { username: 'admin', password: 'Harbor12345' };
const fastRetry = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50, timeoutMs: 2000 };

let emulator: HarborEmulator;
let harbor: HarborClient;
let multiArch: { digest: string; platformDigests: string[]; size: number };
let single: { digest: string; size: number };

beforeAll(async () => {
  emulator = await startHarborEmulator({
    projects: [
      { name: 'library', public: true },
      { name: 'private', public: false },
    ],
    localImages: [],
  });
  multiArch = emulator.addLocalImage({
    image: 'library/ivoa/notebook:1.0',
    platforms: [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ],
    size: 3000,
    layers: 3,
  });
  single = emulator.addLocalImage({ image: 'private/tool:2.1', size: 5000, layers: 2 });
  harbor = new HarborClient({ url: emulator.url, credentials: admin, retry: fastRetry });
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  emulator.setFaults({});
  emulator.resetStats();
});

describe('artifacts', () => {
  it('finds an artifact by tag and by digest, with the size Harbor reports', async () => {
    const byTag = await harbor.getArtifact('private', 'tool', '2.1');
    expect(byTag?.digest).toBe(single.digest);
    expect(byTag?.size).toBe(single.size);
    expect(byTag?.tags?.map((t) => t.name)).toEqual(['2.1']);
    const byDigest = await harbor.getArtifact('private', 'tool', single.digest);
    expect(byDigest?.id).toBe(byTag?.id);
  });

  it('encodes nested repository names twice, as Harbor requires', async () => {
    expect(encodeRepositoryName('ivoa/notebook')).toBe('ivoa%252Fnotebook');
    const artifact = await harbor.getArtifact('library', 'ivoa/notebook', '1.0');
    expect(artifact?.digest).toBe(multiArch.digest);
    expect(artifact?.manifest_media_type).toBe('application/vnd.oci.image.index.v1+json');
    expect(artifact?.references?.map((r) => r.child_digest)).toEqual(multiArch.platformDigests);
    expect(artifact?.references?.[1]?.platform).toMatchObject({ architecture: 'arm64', variant: 'v8' });
    // The same name encoded once reaches Harbor's router as a "/" and matches no route.
    const once = await fetch(
      `${emulator.url}/api/v2.0/projects/library/repositories/ivoa%2Fnotebook/artifacts/1.0`,
      {
        headers: { authorization: `Basic ${Buffer.from('admin:Harbor12345').toString('base64')}` },
      },
    );
    expect(once.status).toBe(404);
  });

  it('answers undefined for an unknown tag and for a digest that matches nothing', async () => {
    expect(await harbor.getArtifact('private', 'tool', '9.9')).toBeUndefined();
    expect(await harbor.getArtifact('private', 'tool', `sha256:${'0'.repeat(64)}`)).toBeUndefined();
    expect(await harbor.getArtifact('private', 'nothing-here', '2.1')).toBeUndefined();
  });

  it('lists artifacts filtered by tag', async () => {
    const list = await harbor.listArtifacts('library', 'ivoa/notebook', { q: 'tags=1.0' });
    expect(list.map((a) => a.digest)).toEqual([multiArch.digest]);
    expect(await harbor.listArtifacts('library', 'ivoa/notebook', { q: 'tags=2.0' })).toEqual([]);
  });
});

describe('projects and registries', () => {
  it('creates a registry endpoint and a proxy-cache project pointing at it', async () => {
    const registryId = await harbor.createRegistry({
      name: 'ghcr-test',
      type: 'github-ghcr',
      url: 'https://ghcr.io',
      insecure: false,
    });
    const registry = await harbor.getRegistry(registryId);
    expect(registry).toMatchObject({
      name: 'ghcr-test',
      type: 'github-ghcr',
      url: 'https://ghcr.io',
      status: 'healthy',
    });
    const projectId = await harbor.createProject({
      project_name: 'ghcr-cache',
      public: true,
      registry_id: registryId,
    });
    const project = await harbor.getProject('ghcr-cache');
    expect(project).toMatchObject({ project_id: projectId, registry_id: registryId });
    expect((await harbor.getProject(projectId))?.name).toBe('ghcr-cache');
    expect(await harbor.projectExists('ghcr-cache')).toBe(true);
    expect(await harbor.projectExists('no-such-project')).toBe(false);
    expect((await harbor.listRegistries({ q: 'name=ghcr-test' })).map((r) => r.id)).toEqual([registryId]);
  });

  it('surfaces Harbor errors as HarborError with Harbor code and message', async () => {
    const error = await harbor.createProject({ project_name: 'library' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HarborError);
    expect(error).toMatchObject({ status: 409, code: 'CONFLICT' });
    expect((error as HarborError).message).toMatch(/already exists/);
    const invalid = await harbor.createProject({ project_name: 'Bad Name' }).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it('rejects wrong credentials with UNAUTHORIZED', async () => {
    const wrong = new HarborClient({
      url: emulator.url,
      credentials: { username: 'admin', password: 'nope' },
      retry: fastRetry,
    });
    await expect(wrong.getProject('library')).rejects.toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });
});

describe('robot accounts', () => {
  it('reads artifacts with a project robot, and is refused what it was not granted', async () => {
    const robot = await harbor.createRobot({
      name: 'reader',
      level: 'project',
      duration: -1,
      permissions: [
        {
          kind: 'project',
          namespace: 'private',
          access: [
            { resource: 'artifact', action: 'read' },
            { resource: 'repository', action: 'pull' },
          ],
        },
      ],
    });
    expect(robot.name).toBe('robot$private+reader');
    expect(robot.secret).toMatch(/.{8,}/);
    const asRobot = new HarborClient({
      url: emulator.url,
      credentials: robotCredentials('private+reader', robot.secret),
      retry: fastRetry,
    });
    expect((await asRobot.getArtifact('private', 'tool', '2.1'))?.digest).toBe(single.digest);
    await expect(
      asRobot.createRegistry({ name: 'x', type: 'docker-hub', url: 'https://hub.docker.com' }),
    ).rejects.toMatchObject({ status: 403, code: 'FORBIDDEN' });
    const anonymous = new HarborClient({ url: emulator.url, retry: fastRetry });
    await expect(anonymous.listRegistries()).rejects.toMatchObject({ status: 401 });
  });
});

describe('retries', () => {
  it('retries idempotent calls through 5xx answers', async () => {
    emulator.setFaults({ api: { error: { rate: 1, count: 2, status: 503 } } });
    const artifact = await harbor.getArtifact('private', 'tool', '2.1');
    expect(artifact?.digest).toBe(single.digest);
    const stats = emulator.stats();
    expect(stats.faults.error).toBe(2);
    expect(
      stats.requests.byRoute[
        'GET /api/v2.0/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}'
      ],
    ).toBe(3);
  });

  it('gives up after the last retry with the status and an HTML-tolerant error', async () => {
    emulator.setFaults({ api: { error: { rate: 1, status: 502 } } });
    const error = await harbor.getProject('library').catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: 'UNKNOWN' });
    expect(emulator.stats().requests.total).toBe(4);
  });

  it('never retries a create: a lost answer must not start two replications', async () => {
    emulator.setFaults({ api: { error: { rate: 1, count: 1, status: 500 } } });
    await expect(harbor.createProject({ project_name: 'once-only' })).rejects.toMatchObject({ status: 500 });
    expect(emulator.stats().requests.byRoute['POST /api/v2.0/projects']).toBe(1);
  });

  it('honours Retry-After on 429', async () => {
    emulator.setFaults({ api: { rateLimit: { rate: 1, count: 1, retryAfterSeconds: 0.3 } } });
    const patient = new HarborClient({
      url: emulator.url,
      credentials: admin,
      retry: { ...fastRetry, maxDelayMs: 1000 },
    });
    const started = Date.now();
    await patient.getProject('library');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(emulator.stats().faults.rateLimit).toBe(1);
  });

  it('times out an unanswered call, retries it, and reports TIMEOUT when all attempts hang', async () => {
    const quick = new HarborClient({
      url: emulator.url,
      credentials: admin,
      retry: { attempts: 2, baseDelayMs: 5, timeoutMs: 150 },
    });
    emulator.setFaults({ api: { timeout: { rate: 1, count: 1 } } });
    expect((await quick.getProject('library'))?.name).toBe('library');
    emulator.setFaults({ api: { timeout: { rate: 1 } } });
    await expect(quick.getProject('library')).rejects.toMatchObject({ status: 0, code: 'TIMEOUT' });
    expect(emulator.stats().faults.timeout).toBe(3);
  });
});
