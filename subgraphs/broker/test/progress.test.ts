/**
 * A callback that reports progress without a phase change (a copy started, bytes staged) is a
 * change of the step: its modification time moves and it is published, so that subscribers see
 * the progress. Found by e2e/subscriptions: an image copy was never shown COPYING.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signedHeaders, STEP_CHANGED, type StepChange } from '@srcnet/service-kit';
import { containerStep, testBroker, waitFor } from './harness.ts';

const SECRET = 'progress-test-secret';
const NEVER = '1000000';

let broker: Awaited<ReturnType<typeof testBroker>>;
beforeAll(async () => {
  broker = await testBroker({
    CALLBACK_SECRET: SECRET,
    SIMULATION_PREPARE_SECONDS: `executable=${NEVER},compute=${NEVER},storage=${NEVER},data=${NEVER}`,
  });
});
afterAll(() => broker.stop());

interface StepDocument {
  phase: string;
  meta: { uuid: string; modified: string };
  executable: { meta: { uuid: string } };
}

const read = async (id: string) =>
  (await (
    await fetch(`${broker.url}/sessions/${id}`, { headers: { accept: 'application/json' } })
  ).json()) as StepDocument;

it('moves the step and publishes it when a callback reports progress alone', async () => {
  const made = await fetch(`${broker.url}/direct`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(containerStep()),
    redirect: 'manual',
  });
  const id = /sessions\/([\w-]+)/.exec(made.headers.get('location') ?? '')![1]!;
  const before = await waitFor('PREPARING', async () => {
    const step = await read(id);
    return step.phase === 'PREPARING' ? step : undefined;
  });
  const changes: StepChange[] = [];
  const stop = await broker.pubsub.subscribe(STEP_CHANGED, (change) => changes.push(change));
  await new Promise((later) => setTimeout(later, 5));

  const callback = {
    eventId: crypto.randomUUID(),
    sequence: Date.now() * 1000,
    at: new Date().toISOString(),
    stepId: id,
    componentUuid: before.executable.meta.uuid,
    phase: 'PREPARING',
    message: 'copying the image',
    progress: { bytesDone: 0, bytesTotal: 1_200_000_000, estimatedSecondsLeft: 30 },
  };
  const body = JSON.stringify(callback);
  const answer = await fetch(`${broker.url}/callbacks`, {
    method: 'POST',
    headers: signedHeaders(SECRET, body, callback.eventId),
    body,
  });
  expect(answer.status).toBe(202);
  expect(await answer.json()).toMatchObject({ outcome: 'applied' });

  const after = await read(id);
  expect(after.phase).toBe('PREPARING');
  expect(Date.parse(after.meta.modified)).toBeGreaterThan(Date.parse(before.meta.modified));
  await waitFor('the change published', async () => (changes.some((c) => c.id === id) ? true : undefined));
  await stop();
});
