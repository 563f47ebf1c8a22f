import { describe, expect, it } from 'vitest';
import { KINDS, type Ivoa } from '@srcnet/execution-step-schema';
import { createEstimator, type Observation } from '../estimates/index.ts';
import { checkRequest } from './checks.ts';
import type { ImageCheck } from './image-check.ts';
import { learnedEstimate } from './learned.ts';
import type { PreparationEstimate } from './make.ts';

const limits = {
  maxCores: 16,
  maxMemoryGiB: 16,
  maxStorageGiB: 1000,
  supportedKinds: Object.keys(KINDS),
  trustedRegistries: [],
};
const DIGEST = `sha256:${'a'.repeat(64)}`;
const container = (extra: Partial<Ivoa.ExecutionRequest> = {}) =>
  checkRequest(
    {
      executable: {
        kind: KINDS.DockerContainer!,
        image: { locations: ['ghcr.io/ivoa/webtop:1.0'], digest: DIGEST },
      },
      ...extra,
    } as Ivoa.ExecutionRequest,
    limits,
    new Date(),
  );
const found = (local: boolean, seconds: number): ImageCheck => ({
  outcome: 'found',
  reference: 'ghcr.io/ivoa/webtop:1.0',
  digest: DIGEST,
  sizeBytes: 400e6,
  availableLocally: local,
  localReference: 'harbor.local/ghcr/ivoa/webtop@' + DIGEST,
  estimatedCopySeconds: local ? 0 : seconds,
});
const source = (check?: ImageCheck, estimator = createEstimator()) =>
  learnedEstimate({
    estimator,
    checkImage: check && (async () => check),
    preparing: async () => 0,
  });
const executableOf = (estimate: PreparationEstimate) =>
  estimate.components.find((c) => c.role === 'executable')!;

describe('learned preparation estimates', () => {
  it("take the Harbor worker's copy time for an image not yet local, and the cached time for one that is", async () => {
    const uncached = await source(found(false, 11))(container());
    const cached = await source(found(true, 0))(container());
    expect(executableOf(uncached)).toMatchObject({
      action: 'image-copy',
      boundSeconds: 11,
      basis: { group: expect.stringMatching(/^Harbor worker/), n: 0, level: 'worker' },
      params: { bytes: 400e6, registry: 'ghcr.io', local: false },
    });
    expect(executableOf(uncached).quantile).toBeUndefined();
    expect(executableOf(cached)).toMatchObject({
      boundSeconds: 1,
      basis: { level: 'default', n: 0 },
      params: { local: true },
    });
    // The session starts after the copy: the difference is the copy time less the cached time.
    expect(uncached.boundSeconds - cached.boundSeconds).toBeCloseTo(10);
    expect(cached.components.map((c) => c.role).sort()).toEqual(['compute', 'executable']);
  });

  it('refuses an image the Harbor worker cannot find or whose digest differs, naming the field', async () => {
    const mismatch = await source({
      outcome: 'refused',
      problem: `digest mismatch: ghcr.io/ivoa/webtop:1.0 has digest sha256:${'e'.repeat(64)}, but the step requires ${DIGEST}`,
    })(container());
    expect(mismatch.refusals).toEqual([
      expect.objectContaining({
        kind: 'urn:bad-value',
        values: expect.objectContaining({ field: 'executable.image.digest' }),
      }),
    ]);
    const missing = await source({ outcome: 'refused', problem: 'image not found: nowhere' })(container());
    expect(missing.refusals![0]!.values.field).toBe('executable.image.locations');
  });

  it('assumes a copy when the Harbor worker does not answer, and says so', async () => {
    const estimate = await source({ outcome: 'unknown', reason: 'no answer within 3 s' })(container());
    expect(executableOf(estimate).boundSeconds).toBe(60);
    expect(executableOf(estimate).note).toBe('image not checked: no answer within 3 s');
    expect(estimate.warnings![0]).toMatchObject({ kind: 'urn:image-not-checked' });
  });

  it('uses the history of copies from the registry once there is enough of it', async () => {
    const estimator = createEstimator();
    for (let i = 0; i < 12; i++)
      estimator.observe({
        action: 'image-copy',
        params: { bytes: 400e6, registry: 'ghcr.io', local: false },
        startedAt: new Date(Date.now() - (20 - i) * 60_000).toISOString(),
        durationSeconds: 40 + i,
        outcome: 'ok',
      });
    const executable = executableOf(await source(found(false, 11), estimator)(container()));
    expect(executable.basis.level).toMatch(/^(exact|coarse)$/);
    expect(executable.basis.n).toBeGreaterThanOrEqual(8);
    expect(executable.quantile).toBeGreaterThan(0.9);
    expect(executable.boundSeconds).toBeGreaterThan(40);
  });

  it('offers 25 GiB from a slow site later than 25 MiB from a fast one', async () => {
    const estimator = createEstimator();
    const sites = { SLOW_RSE: 30e6, FAST_RSE: 1e9 };
    let minute = 0;
    for (const [site, rate] of Object.entries(sites))
      for (const bytes of [25 * 2 ** 20, 2 ** 30, 25 * 2 ** 30, 25 * 2 ** 20, 2 ** 30, 25 * 2 ** 30])
        for (let i = 0; i < 4; i++) {
          const observation: Observation = {
            action: 'data-staging',
            params: { bytes, sourceSite: site, targetStorage: 'cephfs', inFlight: 0 },
            startedAt: new Date(Date.UTC(2026, 0, 1, 12) + minute++ * 60_000).toISOString(),
            durationSeconds: 5 + bytes / rate,
            outcome: 'ok',
          };
          estimator.observe(observation);
        }
    const staging = (site: string, bytes: number) =>
      source(
        found(true, 0),
        estimator,
      )(
        container({
          data: [
            {
              kind: KINDS.SkaoDataResource!,
              meta: { name: 'obs' },
              skao: { namespace: 'ns', objectname: 'o', datasize: bytes, replicas: [{ rsename: site }] },
            } as unknown as Ivoa.SkaoDataResource,
          ],
        }),
      );
    const slow = await staging('SLOW_RSE', 25 * 2 ** 30);
    const fast = await staging('FAST_RSE', 25 * 2 ** 20);
    const slowData = slow.components.find((c) => c.role === 'data')!;
    expect(slowData.basis.level).not.toBe('default');
    expect(slowData).toMatchObject({ action: 'data-staging', params: { sourceSite: 'SLOW_RSE' } });
    // 25 GiB at 30 MB/s is about 900 s; 25 MiB at 1 GB/s is next to nothing.
    expect(slowData.medianSeconds).toBeGreaterThan(600);
    expect(slow.boundSeconds - fast.boundSeconds).toBeGreaterThan(600);
  });
});
