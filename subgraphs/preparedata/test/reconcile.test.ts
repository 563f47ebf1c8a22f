/**
 * Reconciliation with prepareData notifications on: every notification is dropped, yet the batched
 * watcher, run at the reconcile interval and at start-up, reports the staging's end once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { direct, requestFor, startStack, waitFor } from './stack.ts';

type Stack = Awaited<ReturnType<typeof startStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const availableCallbacks = (s: Stack, id: string) =>
  s.callbacks.filter((cb) => cb.stepId === id && cb.phase === 'AVAILABLE' && cb.componentUuid);

const dataAvailable = (s: Stack, id: string) =>
  waitFor(
    `the data of ${id} AVAILABLE`,
    async () => (availableCallbacks(s, id).some((cb) => cb.observation) ? true : undefined),
    20_000,
  );

describe('reconciliation when every prepareData notification is lost', () => {
  it('still reports the staged data AVAILABLE, once', async () => {
    stack = await startStack({ env: { PREPAREDATA_RECONCILE_SECONDS: '0.5' } });
    stack.emulator.setFaults({ callbacks: { drop: { rate: 1 } } });
    const id = (await direct(stack.broker.url, requestFor(['testing:small']))).meta.uuid;
    await dataAvailable(stack, id);
    await new Promise((done) => setTimeout(done, 1200));
    expect(availableCallbacks(stack, id).filter((cb) => cb.observation)).toHaveLength(1);
    expect(stack.emulator.stats().callbacks.dropped).toBeGreaterThan(0);
  }, 30_000);

  it('reports at start-up a job that finished while the worker was down', async () => {
    // Reconciling only at start-up: nothing else can tell the worker the job ended.
    stack = await startStack({ env: { PREPAREDATA_RECONCILE_SECONDS: '0' } });
    stack.emulator.setFaults({ callbacks: { drop: { rate: 1 } } });
    const id = (await direct(stack.broker.url, requestFor(['testing:small']))).meta.uuid;
    await new Promise((done) => setTimeout(done, 1500));
    expect(availableCallbacks(stack, id).filter((cb) => cb.observation)).toHaveLength(0);
    await stack.restartWorker(200);
    await dataAvailable(stack, id);
    expect(availableCallbacks(stack, id).filter((cb) => cb.observation)).toHaveLength(1);
  }, 30_000);
});
