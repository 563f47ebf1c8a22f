import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { loadConfig as loadBrokerConfig } from '../../broker/src/config.ts';
import { expectLatestCallbacks } from '../../shared/src/testing/latest.ts';
import { startStack, waitFor } from './stack.ts';

let stack: Awaited<ReturnType<typeof startStack>>;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

const EXECUTION_POLLS = ['GET /api/v2.0/replication/executions', 'GET /api/v2.0/replication/executions/{id}'];

async function history(id: string) {
  const byStep = await stack.broker.broker.history([id]);
  return byStep.get(id)!;
}

async function finished(id: string): Promise<string> {
  return waitFor(`step ${id} to finish`, async () => {
    const phase = await stack.phase(id);
    return ['COMPLETED', 'FAILED', 'CANCELLED'].includes(phase) ? phase : undefined;
  });
}

describe('prepare of a DockerContainer image', () => {
  it('an image already in the local Harbor is AVAILABLE at once, launched from its local reference', async () => {
    const id = await stack.direct(stack.images.cached);
    expect(await finished(id)).toBe('COMPLETED');
    const changes = await history(id);
    const at = (phase: string) => changes.find((c) => c.to === phase)!.at;
    expect(at('AVAILABLE') - at('PREPARING')).toBeLessThan(1000);

    // The broker may ask for the image component's last callback: the one it applied last.
    const [last] = await expectLatestCallbacks({
      workerUrl: stack.worker.url,
      secret: loadBrokerConfig({}).callbackSecret,
      brokerDb: stack.broker.store.db,
      stepId: id,
      components: 1,
    });
    expect(last!.phase).toBe('COMPLETED');

    const image = await stack.stepImage(id);
    expect(image).toMatchObject({
      copyState: 'NOT_NEEDED',
      availableLocally: true,
      digest: stack.images.cached.digest,
      estimatedCopySeconds: 0,
    });
    const local = await fetch(`${stack.worker.url}/images/local?stepId=${id}`);
    expect(await local.json()).toEqual({
      localReference: `${new URL(stack.harbor.url).host}/skaha/ivoa/cached@${stack.images.cached.digest}`,
      digest: stack.images.cached.digest,
    });
  });

  it('an uncached image is copied by replication (COPYING, then SUCCEEDED) before the step runs, completion by webhook', async () => {
    stack.harbor.resetStats();
    const id = await stack.direct(stack.images.uncached);
    const states: string[] = [];
    const phase = await waitFor('the step to finish', async () => {
      const image = await stack.stepImage(id);
      if (image && states.at(-1) !== image.copyState) states.push(image.copyState);
      const current = await stack.phase(id);
      return ['COMPLETED', 'FAILED'].includes(current) ? current : undefined;
    });
    expect(phase).toBe('COMPLETED');
    expect(states).toContain('COPYING');
    expect(states.at(-1)).toBe('SUCCEEDED');
    expect(states.indexOf('COPYING')).toBeLessThan(states.indexOf('SUCCEEDED'));

    const image = await stack.stepImage(id);
    expect(image).toMatchObject({
      availableLocally: true,
      digest: stack.images.uncached.digest,
      localReference: `${new URL(stack.harbor.url).host}/skaha/ivoa/webtop@${stack.images.uncached.digest}`,
    });
    expect(image.sizeBytes).toBeGreaterThan(400_000_000);
    expect(image.bytesDone).toBe(image.sizeBytes);
    expect(image.estimatedCopySeconds).toBeGreaterThan(8);
    // The compute (simulated) only started once the image was local: RUNNING follows AVAILABLE.
    expect((await history(id)).map((c) => c.to)).toEqual(
      expect.arrayContaining(['PREPARING', 'AVAILABLE', 'RUNNING', 'COMPLETED']),
    );

    const stats = stack.harbor.stats();
    expect(stats.requests.byRoute['POST /api/v2.0/replication/executions']).toBe(1);
    expect(stats.replication.executions.Succeed).toBeGreaterThanOrEqual(1);
    expect(stats.webhooks.delivered).toBeGreaterThan(0);
    for (const route of EXECUTION_POLLS) expect(stats.requests.byRoute[route] ?? 0).toBe(0);
    const local = await fetch(`${stack.worker.url}/images/local?stepId=${id}`);
    expect((await local.json()).localReference).toBe(image.localReference);
  });

  it('a wrong digest fails the step, naming both digests, before any compute prepare command', async () => {
    const handle = vi.spyOn(stack.broker.simulation, 'handle');
    const wrong = `sha256:${'c'.repeat(64)}`;
    const id = await stack.direct({ location: stack.images.uncached.location, digest: wrong });
    expect(await finished(id)).toBe('FAILED');
    const document = JSON.stringify((await stack.rest('GET', `/sessions/${id}`)).body);
    expect(document).toContain(wrong);
    expect(document).toContain(stack.images.uncached.digest);
    const image = await stack.stepImage(id);
    expect(image).toMatchObject({ copyState: 'FAILED', availableLocally: false });
    expect(image.message).toContain(wrong);
    expect(image.message).toContain(stack.images.uncached.digest);
    const computePrepares = handle.mock.calls
      .map(([command]) => command as Ivoa.WorkerCommand)
      .filter((c) => c.stepId === id && c.component.role === 'compute' && c.action === 'prepare');
    expect(computePrepares).toEqual([]);
    handle.mockRestore();
  });

  it('a missing image fails the step with a message naming the reference', async () => {
    const location = `${new URL(stack.source.url).host}/ivoa/nothing:9.9`;
    const id = await stack.direct({ location, digest: `sha256:${'d'.repeat(64)}` });
    expect(await finished(id)).toBe('FAILED');
    const image = await stack.stepImage(id);
    expect(image.message).toContain('not found');
    expect(image.message).toContain(location);
  });
});

describe('POST /estimates', () => {
  const estimate = async (image: { locations: string[]; digest?: string }) => {
    const response = await fetch(`${stack.worker.url}/estimates`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image }),
    });
    return { status: response.status, body: await response.json() };
  };

  it('gives a larger estimate for an image that must be copied than for one already local', async () => {
    const sourceHost = new URL(stack.source.url).host;
    stack.source.addLocalImage({ image: 'ivoa/fresh:2.0', size: 300 * 1024 * 1024, layers: 3 });
    const uncached = await estimate({ locations: [`${sourceHost}/ivoa/fresh:2.0`] });
    const cached = await estimate({
      locations: [stack.images.cached.location],
      digest: stack.images.cached.digest,
    });
    expect(uncached.status).toBe(200);
    expect(uncached.body).toMatchObject({
      availableLocally: false,
      reference: `${sourceHost}/ivoa/fresh:2.0`,
    });
    expect(uncached.body.sizeBytes).toBeGreaterThan(300_000_000);
    expect(cached.body).toMatchObject({ availableLocally: true, estimatedCopySeconds: 0 });
    expect(uncached.body.estimatedCopySeconds).toBeGreaterThan(cached.body.estimatedCopySeconds + 1);
  });

  it('answers 422 naming both digests for a wrong digest, and 400 for a body without locations', async () => {
    const wrong = `sha256:${'e'.repeat(64)}`;
    const mismatch = await estimate({ locations: [stack.images.uncached.location], digest: wrong });
    expect(mismatch.status).toBe(422);
    expect(mismatch.body.error).toContain(wrong);
    expect(mismatch.body.error).toContain(stack.images.uncached.digest);
    expect((await estimate({ locations: [] })).status).toBe(400);
  });
});

describe('the subgraph and the webhook endpoint', () => {
  it('Query.containerImage reports a local image and an uncached one', async () => {
    const result = await stack.graphql(
      `query ($a: String!, $b: String!) {
        local: containerImage(reference: $a) { availableLocally estimatedCopySeconds copyState }
        remote: containerImage(reference: $b) { availableLocally sizeBytes estimatedCopySeconds }
      }`,
      { a: stack.images.cached.location, b: `${new URL(stack.source.url).host}/ivoa/webtop:1.0` },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data.local).toEqual({ availableLocally: true, estimatedCopySeconds: 0, copyState: null });
    // webtop was copied by an earlier test: now it is local too.
    expect(result.data.remote.availableLocally).toBe(true);
  });

  it("ExecutionStep.image is hidden from another user's query", async () => {
    const id = await stack.direct(stack.images.cached);
    await finished(id);
    const result = await stack.graphql(
      `query ($reps: [_Any!]!) { _entities(representations: $reps) { ... on ExecutionStep { image { copyState } } } }`,
      { reps: [{ __typename: 'ExecutionStep', id }] },
      { authorization: 'Bearer dev:mallory' },
    );
    expect(result.data._entities[0].image).toBeNull();
  });

  it('refuses a webhook delivery without the auth_header the policy registered', async () => {
    const response = await fetch(`${stack.worker.url}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer guess' },
      body: JSON.stringify({ type: 'REPLICATION', occur_at: 1, operator: 'x', event_data: {} }),
    });
    expect(response.status).toBe(401);
  });
});
