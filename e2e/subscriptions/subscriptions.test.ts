/**
 * Live step status through the gateway, with every service a separate process: a graphql-ws
 * subscriber sees each phase of a container step from ACCEPTED to COMPLETED, in order, with the
 * Skaha session and the Harbor image (fields from other subgraphs) on each event.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument, upgradeExecutionRequest } from '@srcnet/execution-step-schema';
import { startE2EStack, subscribe, type E2EStack, STACK_START_MS } from '../support/stack.ts';

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
const REQUEST = {
  executable: {
    kind: `${KIND}executable/docker-container.yaml`,
    image: {
      locations: ['ghcr.io/zarquan/heliophorus-cantliei:sha-831ee57'],
      digest: 'sha256:6e495692cc6f1cae2023f261f433d4691aa70b19416730f8301e45fbb74bc526',
    },
  },
  compute: { kind: `${KIND}compute/simple-compute-resource.yaml`, cores: { min: 1, max: 1 } },
  schedule: { requested: { duration: 'PT10M' } },
};

const CHANGED = /* GraphQL */ `
  subscription Changed($id: ID) {
    executionStepChanged(id: $id) {
      id
      phase
      skahaSession {
        status
      }
      image {
        copyState
        localReference
      }
    }
  }
`;

let stack: E2EStack;
let failed = false;
beforeAll(async () => {
  stack = await startE2EStack({ name: 'subscriptions' });
}, STACK_START_MS);
afterAll(() => stack?.stop(failed));

async function offer(token: string) {
  const answer = await stack.graphql(
    'mutation Offer($request: ExecutionRequestInput!) { requestOffers(request: $request) { result offers { id phase } } }',
    { request: REQUEST },
    token,
  );
  expect(answer.body.errors).toBeUndefined();
  expect(answer.body.data.requestOffers.result).toBe('YES');
  return answer.body.data.requestOffers.offers as { id: string }[];
}

describe('executionStepChanged through the gateway', () => {
  it('delivers every phase from ACCEPTED to COMPLETED in order, each with fields from the Skaha and Harbor subgraphs', async () => {
    try {
      const subscriber = subscribe(stack.ws('dev:alice'), CHANGED);
      // The subscription is live once the (empty) current state has been sent; give it a moment.
      await new Promise((done) => setTimeout(done, 300));
      const [first] = await offer('dev:alice');
      const accepted = await stack.graphql(
        'mutation Accept($id: ID!) { acceptOffer(id: $id) { id phase } }',
        { id: first!.id },
        'dev:alice',
      );
      expect(accepted.body.errors).toBeUndefined();

      const mine = () =>
        subscriber.events.filter((event) => event.data?.executionStepChanged.id === first!.id);
      await subscriber.until(
        () => mine().some((event) => ['COMPLETED', 'FAILED'].includes(event.data.executionStepChanged.phase)),
        'COMPLETED event',
        90_000,
      );
      const steps = mine().map((event) => event.data.executionStepChanged);
      const phases = steps
        .map((step) => step.phase)
        .filter((phase, i, all) => phase !== 'WAITING' && phase !== all[i - 1]);
      expect(phases.slice(phases.indexOf('ACCEPTED'))).toEqual([
        'ACCEPTED',
        'PREPARING',
        'AVAILABLE',
        'RUNNING',
        'RELEASING',
        'COMPLETED',
      ]);
      for (const step of steps) {
        expect(step).toHaveProperty('skahaSession');
        expect(step).toHaveProperty('image');
      }
      const running = steps.find((step) => step.phase === 'RUNNING');
      expect(running.skahaSession.status).toBe('Running');
      expect(steps.at(-1).skahaSession.status).toMatch(/Completed|Succeeded|Terminating/);
      expect(running.image.localReference).toMatch(/heliophorus-cantliei/);
    } catch (error) {
      failed = true;
      throw error;
    }
  }, 120_000);

  it('gives a client that reconnects the current state first, so a transition made while it was away is not missed', async () => {
    try {
      const [first] = await offer('dev:bruno');
      const before = subscribe(stack.ws('dev:bruno'), CHANGED, { id: first!.id });
      await before.until((events) => events.length > 0, 'the current state');
      expect(before.events[0]!.data.executionStepChanged.phase).toBe('OFFERED');
      before.stop();

      const rejected = await stack.graphql(
        'mutation Reject($id: ID!) { rejectOffer(id: $id) { phase } }',
        { id: first!.id },
        'dev:bruno',
      );
      expect(rejected.body.data.rejectOffer.phase).toBe('REJECTED');

      const after = subscribe(stack.ws('dev:bruno'), CHANGED, { id: first!.id });
      await after.until((events) => events.length > 0, 'the current state');
      expect(after.events[0]!.data.executionStepChanged.phase).toBe('REJECTED');
    } catch (error) {
      failed = true;
      throw error;
    }
  });

  it('runs the reference example 009 (a 1.2 GB image and a Rucio file) through Harbor, prepareData and Skaha, with staging progress on the events', async () => {
    try {
      const example = parseDocument(
        readFileSync(
          resolve(
            import.meta.dirname,
            '../../../shared/reference/calycopis-examples/example-009-001-offerset-request.yaml',
          ),
          'utf8',
        ),
        'yaml',
      );
      const request = upgradeExecutionRequest(example).document;
      const watching = /* GraphQL */ `
        subscription Changed {
          executionStepChanged {
            id
            phase
            image {
              copyState
            }
            dataStaging {
              state
              bytesDone
              bytesTotal
            }
            skahaSession {
              status
            }
          }
        }
      `;
      const subscriber = subscribe(stack.ws('dev:chloe'), watching);
      await new Promise((done) => setTimeout(done, 300));
      const answer = await stack.graphql(
        'mutation Offer($request: ExecutionRequestInput!) { requestOffers(request: $request) { result offers { id } } }',
        { request },
        'dev:chloe',
      );
      expect(answer.body.errors).toBeUndefined();
      const id = answer.body.data.requestOffers.offers[0].id as string;
      await stack.graphql('mutation A($id: ID!) { acceptOffer(id: $id) { id } }', { id }, 'dev:chloe');
      const mine = () =>
        subscriber.events.map((event) => event.data?.executionStepChanged).filter((step) => step?.id === id);
      await subscriber.until(
        () => mine().some((step) => ['RUNNING', 'COMPLETED', 'FAILED'].includes(step.phase)),
        'RUNNING',
        120_000,
      );
      const steps = mine();
      expect(steps.map((step) => step.phase)).not.toContain('FAILED');
      const available = steps.find((step) => step.phase === 'AVAILABLE');
      expect(available.dataStaging).toEqual([
        expect.objectContaining({
          state: 'COMPLETED',
          bytesDone: 29,
          bytesTotal: 29,
        }),
      ]);
      expect(available.image.copyState).toBe('SUCCEEDED');
      const preparing = steps.filter((step) => step.phase === 'PREPARING');
      expect(preparing.some((step) => step.image?.copyState === 'COPYING')).toBe(true);
    } catch (error) {
      failed = true;
      throw error;
    }
  }, 150_000);
});
