import { afterEach, describe, expect, it } from 'vitest';
import { dataStaging, direct, MB, requestFor, startStack, waitFor } from './stack.ts';

type Stack = Awaited<ReturnType<typeof startStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const availableIn = (s: Stack, id: string) =>
  waitFor(
    `step ${id} AVAILABLE`,
    async () =>
      ((await s.broker.broker.history([id])).get(id) ?? []).some((h) => h.to === 'AVAILABLE')
        ? true
        : undefined,
    20_000,
  );

describe('without prepareData callbacks', () => {
  it('follows every job with one list call per interval, never a status call per job', async () => {
    stack = await startStack({
      env: { PREPAREDATA_CALLBACKS: 'off', PREPAREDATA_WATCH_INTERVAL_SECONDS: '0.4' },
    });
    const step = await direct(stack.broker.url, requestFor(['testing:cube-a', 'testing:cube-b']));
    const id = step.meta.uuid;
    await availableIn(stack, id);
    const view = await dataStaging(stack.worker.url, id);
    expect(view.map((job) => job.state)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(view.every((job) => job.localPath !== null)).toBe(true);
    const stats = stack.emulator.stats();
    expect(stats.callbacks.generated).toBe(0);
    expect(stats.requests.byOperation.getJob ?? 0).toBe(0);
    // Both jobs were submitted together, so every list call named both of them.
    const [a, b] = view.map((job) => stats.requests.byJob[job.jobId!]!);
    expect(a!.listJobs).toBeGreaterThan(2);
    expect(Math.abs(a!.listJobs! - b!.listJobs!)).toBeLessThanOrEqual(1);
    expect(stats.requests.byOperation.listJobs).toBeLessThanOrEqual(Math.max(a!.listJobs!, b!.listJobs!) + 1);
    // Progress still reaches the broker, from the listed jobs.
    const progress = stack.callbacks.filter(
      (cb) => cb.stepId === id && cb.phase === 'PREPARING' && cb.progress,
    );
    expect(progress.some((cb) => cb.progress!.bytesDone! > 0 && cb.progress!.bytesDone! < 40 * MB)).toBe(
      true,
    );
  }, 30_000);
});

describe('a worker restart', () => {
  it('catches up with one list call for the notifications it missed', async () => {
    stack = await startStack();
    const step = await direct(stack.broker.url, requestFor(['testing:cube-a']));
    const id = step.meta.uuid;
    await waitFor('bytes moving', async () => {
      const [job] = await dataStaging(stack!.worker.url, id);
      return job && job.bytesDone > 0 ? job : undefined;
    });
    // Down while the transfer ends: prepareData's notifications of it find nobody.
    stack.emulator.resetStats();
    await stack.restartWorker(3000);
    await availableIn(stack, id);
    const [job] = await dataStaging(stack.worker.url, id);
    expect(job).toMatchObject({ state: 'COMPLETED', bytesDone: 40 * MB, localPath: expect.any(String) });
    const stats = stack.emulator.stats();
    expect(stats.callbacks.failedAttempts).toBeGreaterThan(0);
    expect(stats.requests.byOperation.listJobs).toBe(1);
  }, 30_000);
});
