import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectLatestCallbacks } from '../../shared/src/testing/latest.ts';
import {
  cancelStep,
  dataStaging,
  direct,
  extendDataLifetime,
  getStep,
  MB,
  requestFor,
  startStack,
  waitFor,
  type StagingView,
} from './stack.ts';

type Stack = Awaited<ReturnType<typeof startStack>>;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const phaseOf = async (id: string) => (await getStep(stack.broker.url, id)).phase;
const untilPhase = (id: string, phase: string, timeoutMs?: number) =>
  waitFor(`step ${id} ${phase}`, async () => ((await phaseOf(id)) === phase ? phase : undefined), timeoutMs);
const historyOf = async (id: string) =>
  ((await stack.broker.broker.history([id])).get(id) ?? []).map((entry) => entry.to);

/** Files the emulator holds in its storage areas (sparse files under dataRoot). */
function stagedFiles(): string[] {
  return readdirSync(stack.emulator.dataRoot, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

const windowOf = (step: Awaited<ReturnType<typeof getStep>>) => {
  const schedule = step.schedule!;
  const start = Date.parse(schedule.available!.start!.split('/')[0]!);
  const hours = Number(/PT(\d+)H/.exec(schedule.available!.duration!)![1]);
  const releaseSeconds = Number(/PT(\d+)S/.exec(schedule.releasing!.duration!)![1]);
  return { end: start + hours * 3_600_000, releaseMs: releaseSeconds * 1000 };
};

describe('a step with two SKAO data resources', () => {
  it('shows staging progress rising to complete, then becomes AVAILABLE; its end releases the data', async () => {
    stack.emulator.resetStats();
    const step = await direct(stack.broker.url, requestFor(['testing:cube-a', 'testing:cube-b']));
    const id = step.meta.uuid;
    const samples: StagingView[][] = [];
    await waitFor(
      'both cubes staged',
      async () => {
        const view = await dataStaging(stack.worker.url, id);
        samples.push(view);
        return view.length === 2 && view.every((job) => job.state === 'COMPLETED') ? view : undefined;
      },
      20_000,
    );

    // The subgraph shows bytesDone rising for each resource, with a rate and time left on the way.
    for (const name of ['data-1', 'data-2']) {
      const seen = samples.map((view) => view.find((job) => job.resourceName === name)).filter(Boolean);
      const done = seen.map((job) => job!.bytesDone);
      expect(done).toEqual([...done].sort((a, b) => a - b));
      const partial = new Set(done.filter((bytes) => bytes > 0 && bytes < 40 * MB));
      expect(partial.size).toBeGreaterThanOrEqual(2);
      expect(seen.some((job) => job!.rate! > 0 && job!.estimatedSecondsLeft! > 0)).toBe(true);
      const last = seen.at(-1)!;
      expect(last).toMatchObject({
        bytesDone: 40 * MB,
        bytesTotal: 40 * MB,
        fraction: 1,
        estimatedSecondsLeft: 0,
      });
      expect(last.source).toBe(name === 'data-1' ? 'testing:cube-a' : 'testing:cube-b');
      expect(existsSync(last.localPath!)).toBe(true);
    }

    await waitFor('AVAILABLE in the history', async () =>
      (await historyOf(id)).includes('AVAILABLE') ? true : undefined,
    );

    // Progress callbacks reached the broker: rising, at least 1 s apart per component, each published.
    const dataUuids = step.data!.map((data) => data.meta!.uuid!);
    for (const uuid of dataUuids) {
      const progress = stack.callbacks.filter(
        (cb) => cb.componentUuid === uuid && cb.phase === 'PREPARING' && (cb.progress?.bytesDone ?? 0) > 0,
      );
      expect(progress.length).toBeGreaterThanOrEqual(2);
      const bytes = progress.map((cb) => cb.progress!.bytesDone!);
      expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
      for (let i = 1; i < progress.length; i++)
        expect(Date.parse(progress[i]!.at) - Date.parse(progress[i - 1]!.at)).toBeGreaterThanOrEqual(990);
      const available = stack.callbacks.find((cb) => cb.componentUuid === uuid && cb.phase === 'AVAILABLE')!;
      expect(available.observation).toMatchObject({
        action: 'data-staging',
        params: {
          bytes: 40 * MB,
          sourceSite: 'SLOW_STORM',
          targetStorage: 'test-area',
          inFlight: expect.any(Number),
        },
        outcome: 'ok',
      });
      expect(available.observation!.durationSeconds).toBeGreaterThan(1);
    }
    const progressCallbacks = stack.callbacks.filter(
      (cb) => cb.stepId === id && cb.phase === 'PREPARING' && cb.progress,
    ).length;
    const preparingChanges = stack.published.filter(
      (change) => change.id === id && change.phase === 'PREPARING',
    );
    expect(preparingChanges.length).toBeGreaterThanOrEqual(progressCallbacks);

    // No status polls: no list calls, and per job one read of its file list after it completed.
    const stats = stack.emulator.stats();
    expect(stats.requests.byOperation.listJobs ?? 0).toBe(0);
    expect(stats.callbacks.delivered).toBeGreaterThan(4);
    const jobs = samples.at(-1)!.map((job) => job.jobId!);
    for (const job of jobs) expect(stats.requests.byJob[job]).toMatchObject({ submit: 1, getJob: 1 });

    // The container exits long before the 4-hour window ends: the step releases its data.
    await untilPhase(id, 'COMPLETED');
    const released = await waitFor('data released', async () => {
      const view = await dataStaging(stack.worker.url, id);
      return view.every((job) => job.state === 'RELEASED') ? view : undefined;
    });
    expect(released.every((job) => job.localPath === null)).toBe(true);
    for (const job of samples.at(-1)!) expect(existsSync(job.localPath!)).toBe(false);
    expect(stack.emulator.stats().requests.byOperation.release).toBe(2);
  }, 30_000);
});

describe('failures and early ends', () => {
  it('fails the step when a DID is missing, with a message naming it, and frees the other data', async () => {
    const step = await direct(stack.broker.url, requestFor(['testing:small', 'testing:not-there']));
    const id = step.meta.uuid;
    await untilPhase(id, 'FAILED');
    const document = await getStep(stack.broker.url, id);
    const messages = (document.meta?.messages ?? []).map((m) => m.message ?? '');
    expect(messages.some((text) => text.includes('testing:not-there'))).toBe(true);
    const view = await waitFor('the other data released', async () => {
      const jobs = await dataStaging(stack.worker.url, id);
      return jobs.find((job) => job.source === 'testing:small')?.state === 'RELEASED' ? jobs : undefined;
    });
    expect(view.find((job) => job.source === 'testing:not-there')).toMatchObject({
      state: 'FAILED',
      message: expect.stringContaining('testing:not-there'),
    });
  });

  it('releases the job and removes its files when the step is cancelled mid-transfer', async () => {
    const step = await direct(stack.broker.url, requestFor(['testing:cube-a']));
    const id = step.meta.uuid;
    const moving = await waitFor('bytes moving', async () => {
      const [job] = await dataStaging(stack.worker.url, id);
      return job && job.state === 'STAGING' && job.bytesDone > 0 ? job : undefined;
    });
    expect(moving.bytesDone).toBeLessThan(40 * MB);
    await cancelStep(stack.broker.url, id);
    await untilPhase(id, 'CANCELLED');
    const [job] = await waitFor('data released', async () => {
      const jobs = await dataStaging(stack.worker.url, id);
      return jobs[0]?.state === 'RELEASED' ? jobs : undefined;
    });
    expect(job!.bytesDone).toBeLessThan(40 * MB);
    const data = (await getStep(stack.broker.url, id)).data![0]!;
    expect(data.phase).toBe('CANCELLED');
    expect(stack.emulator.stats().requests.byJob[job!.jobId!]?.release).toBe(1);
    // The emulator writes a file when its transfer completes: none may be left, now or later.
    await new Promise((done) => setTimeout(done, 2500));
    expect(stagedFiles()).toEqual([]);
  });

  it('asks for the window plus release time, extends it with the window, and releases early', async () => {
    const step = await direct(stack.broker.url, requestFor(['testing:small']));
    const id = step.meta.uuid;
    const [job] = await waitFor('staged', async () => {
      const jobs = await dataStaging(stack.worker.url, id);
      return jobs[0]?.state === 'COMPLETED' ? jobs : undefined;
    });
    const window = windowOf(await getStep(stack.broker.url, id));
    // expiresAt is the service's clock: submission + lifetime. It lands on window end + release time.
    expect(Math.abs(Date.parse(job!.expiresAt!) - (window.end + window.releaseMs))).toBeLessThanOrEqual(1500);
    expect(job!.lifetimeSeconds).toBeGreaterThan(4 * 3600);

    expect((await extendDataLifetime(stack.worker.url, id, 60, 'eve')).errors?.[0]?.message).toContain(
      'has no staged data of yours',
    );
    expect(await dataStaging(stack.worker.url, id, 'eve')).toEqual([]);
    const extended = await extendDataLifetime(stack.worker.url, id, 1800);
    expect(extended.errors).toBeUndefined();
    const [after] = extended.data!['extendDataLifetime'] as (typeof job)[];
    expect(
      Math.abs(Date.parse(after!.expiresAt!) - (window.end + 1_800_000 + window.releaseMs)),
    ).toBeLessThanOrEqual(1500);
    expect(stack.emulator.stats().requests.byOperation.extendLifetime).toBe(1);

    // The container exits after 2 s, hours before the window ends: the copy goes now, not at expiry.
    await untilPhase(id, 'COMPLETED');
    await waitFor('released', async () =>
      (await dataStaging(stack.worker.url, id))[0]?.state === 'RELEASED' ? true : undefined,
    );
    expect(existsSync(job!.localPath!)).toBe(false);
  }, 20_000);
});

describe('reconciliation with the broker', () => {
  it('answers POST /components/latest with the last callback of each storage and data component', async () => {
    const step = await direct(stack.broker.url, requestFor(['testing:small']));
    const id = step.meta.uuid;
    await untilPhase(id, 'COMPLETED', 15_000);
    const document = (await stack.broker.broker.steps([id]))[0]!.document;
    const answer = await expectLatestCallbacks({
      workerUrl: stack.worker.url,
      secret: stack.broker.config.callbackSecret,
      brokerDb: stack.broker.store.db,
      stepId: id,
      components: (document.storage?.length ?? 0) + (document.data?.length ?? 0),
    });
    expect(answer.map((callback) => callback.phase)).toEqual(answer.map(() => 'COMPLETED'));
  }, 20_000);
});
