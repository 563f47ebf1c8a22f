/**
 * Reconciliation with Harbor webhooks on: every webhook is dropped, yet the copy watcher, run at
 * the reconcile interval and at start-up, reports the copy's end once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { startStack, waitFor } from './stack.ts';

type Stack = Awaited<ReturnType<typeof startStack>>;
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** The image component's callbacks the broker applied, by step. */
function recordCallbacks(s: Stack) {
  const applied: Ivoa.ComponentCallback[] = [];
  const apply = s.broker.broker.applyCallback.bind(s.broker.broker);
  s.broker.broker.applyCallback = async (callback, source) => {
    const outcome = await apply(callback, source);
    if (outcome === 'applied') applied.push(callback);
    return outcome;
  };
  return (id: string) => applied.filter((cb) => cb.stepId === id && cb.observation).map((cb) => cb.phase);
}

const copied = (s: Stack, id: string) =>
  waitFor(
    `the image of ${id} copied`,
    async () => ((await s.stepImage(id))?.copyState === 'SUCCEEDED' ? true : undefined),
    20_000,
  );

describe('reconciliation when every Harbor webhook is lost', () => {
  it('still reports the copied image AVAILABLE, once', async () => {
    stack = await startStack({ HARBOR_RECONCILE_SECONDS: '0.5' });
    stack.harbor.setFaults({ webhooks: { drop: { rate: 1 } } });
    const reported = recordCallbacks(stack);
    const id = await stack.direct(stack.images.uncached);
    await copied(stack, id);
    await new Promise((done) => setTimeout(done, 1200));
    expect(reported(id)).toEqual(['AVAILABLE']);
    expect(stack.harbor.stats().faults.drop).toBeGreaterThan(0);
    expect(stack.harbor.stats().webhooks.delivered).toBe(0);
  }, 30_000);

  it('reports at start-up a copy that finished while the worker was down', async () => {
    // Reconciling only at start-up: nothing else can tell the worker the copy ended.
    stack = await startStack({ HARBOR_RECONCILE_SECONDS: '0' });
    stack.harbor.setFaults({ webhooks: { drop: { rate: 1 } } });
    const reported = recordCallbacks(stack);
    const id = await stack.direct(stack.images.uncached);
    await waitFor('the copy started', async () =>
      (await stack!.stepImage(id))?.copyState === 'COPYING' ? true : undefined,
    );
    await new Promise((done) => setTimeout(done, 3000));
    expect((await stack.stepImage(id))?.copyState).toBe('COPYING');
    await stack.restartWorker(100);
    await copied(stack, id);
    expect(reported(id)).toEqual(['AVAILABLE']);
  }, 30_000);
});
