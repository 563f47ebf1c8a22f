import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { print } from 'graphql';
import {
  AcceptOfferDocument,
  CancelExecutionStepDocument,
  ExecuteDirectDocument,
  ExecutionStepDocument,
  ExecutionStepsDocument,
  OfferSetDocument,
  RejectOfferDocument,
  RequestOffersDocument,
  createExecutionClient,
} from '@srcnet/execution-step-client';
import { upgradeExecutionRequest, validateExecutionRequest } from '@srcnet/execution-step-schema';
import { parse } from 'yaml';
import { exampleText, testBroker, waitFor } from './harness.ts';

let broker: Awaited<ReturnType<typeof testBroker>>;
beforeAll(async () => {
  broker = await testBroker();
});
afterAll(() => broker.stop());

const client = (user: string) =>
  createExecutionClient({ url: `${broker.url}/graphql`, token: `dev:${user}` });

/** The 1.0.7 document a portal would send: the reference example, upgraded. */
function request(name: string) {
  const checked = validateExecutionRequest(upgradeExecutionRequest(parse(exampleText(name))).document);
  if (!checked.ok) throw new Error('example does not validate');
  return checked.value;
}

describe('the broker subgraph', () => {
  it('runs the reference flow through GraphQL with the typed client', async () => {
    const alice = client('alice');
    const { requestOffers } = await alice.request(RequestOffersDocument, {
      request: request('001-001-offerset-request.yaml') as never,
    });
    expect(requestOffers.result).toBe('YES');
    expect(requestOffers.offers).toHaveLength(4);
    const [offer0, offer1, ...rest] = requestOffers.offers;
    expect(offer0!.executable?.__typename).toBe('JupyterNotebook');

    const rejected = await alice.request(RejectOfferDocument, { id: offer0!.id });
    expect(rejected.rejectOffer.phase).toBe('REJECTED');
    const accepted = await alice.request(AcceptOfferDocument, { id: offer1!.id });
    expect(accepted.acceptOffer.phase).toBe('WAITING');
    const { offerSet } = await alice.request(OfferSetDocument, { id: requestOffers.id });
    expect(offerSet!.offers.filter((o) => rest.some((r) => r.id === o.id)).map((o) => o.phase)).toEqual([
      'REJECTED',
      'REJECTED',
    ]);

    const { executionStep: waiting } = await alice.request(ExecutionStepDocument, { id: offer1!.id });
    expect(waiting!.history.map((h) => h.to)).toEqual(['OFFERED', 'ACCEPTED', 'WAITING']);
    expect(waiting!.history[1]).toMatchObject({ from: 'OFFERED', to: 'ACCEPTED', cause: 'client:accept' });
    expect(waiting!.offerSet?.id).toBe(requestOffers.id);

    const { executeDirect } = await alice.request(ExecuteDirectDocument, {
      request: request('003-001-offerset-request.json') as never,
    });
    const available = await waitFor('AVAILABLE', async () => {
      const { executionStep } = await alice.request(ExecutionStepDocument, { id: executeDirect.id });
      return executionStep?.phase === 'AVAILABLE' ? executionStep : undefined;
    });
    expect(available.history.map((h) => h.to).filter((p) => p !== 'WAITING')).toEqual([
      'OFFERED',
      'ACCEPTED',
      'PREPARING',
      'AVAILABLE',
    ]);
    expect(available.offerSet).toBeTruthy();

    await expect(alice.request(AcceptOfferDocument, { id: offer0!.id })).rejects.toThrow('it is REJECTED');
    const cancelled = await alice.request(CancelExecutionStepDocument, { id: offer1!.id });
    expect(cancelled.cancelExecutionStep.phase).toBe('CANCELLED');
  });

  it('keeps each user to their own steps', async () => {
    const { requestOffers } = await client('carol').request(RequestOffersDocument, {
      request: request('003-001-offerset-request.json') as never,
    });
    const id = requestOffers.offers[0]!.id;
    expect((await client('dave').request(ExecutionStepDocument, { id })).executionStep).toBeNull();
    await expect(client('dave').request(CancelExecutionStepDocument, { id })).rejects.toThrow(
      `no step ${id}`,
    );
    const entities = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev:dave' },
      body: JSON.stringify({
        query: `query($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id phase } } }`,
        variables: { r: [{ __typename: 'ExecutionStep', id }] },
      }),
    });
    expect((await entities.json()).data._entities).toEqual([null]);
    const mine = await client('carol').request(ExecutionStepsDocument, { first: 50 });
    expect(mine.executionSteps.edges.map((e) => e.node.id)).toContain(id);
    const theirs = await client('dave').request(ExecutionStepsDocument, { first: 50 });
    expect(theirs.executionSteps.edges.map((e) => e.node.id)).not.toContain(id);
  });

  it('pages steps newest first with cursors, and filters by phase', async () => {
    const erin = client('erin');
    for (let i = 0; i < 3; i++)
      await erin.request(RequestOffersDocument, {
        request: request('003-001-offerset-request.json') as never,
      });
    const first = await erin.request(ExecutionStepsDocument, { first: 5 });
    expect(first.executionSteps.edges).toHaveLength(5);
    expect(first.executionSteps.pageInfo.hasNextPage).toBe(true);
    const next = await erin.request(ExecutionStepsDocument, {
      first: 50,
      after: first.executionSteps.pageInfo.endCursor,
    });
    const all = [...first.executionSteps.edges, ...next.executionSteps.edges].map((e) => e.node.id);
    expect(new Set(all).size).toBe(12);
    expect(next.executionSteps.pageInfo.hasNextPage).toBe(false);
    const offered = await erin.request(ExecutionStepsDocument, { first: 50, filter: { phase: ['OFFERED'] } });
    expect(offered.executionSteps.edges.every((e) => e.node.phase === 'OFFERED')).toBe(true);
    const none = await erin.request(ExecutionStepsDocument, { first: 50, filter: { phase: ['COMPLETED'] } });
    expect(none.executionSteps.edges).toHaveLength(0);
    await expect(erin.request(ExecutionStepsDocument, { first: 5, after: 'bogus' })).rejects.toThrow(
      'is not a cursor',
    );
  });

  it('refuses a malformed request with the path and rule in the error', async () => {
    const response = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: print(RequestOffersDocument),
        variables: { request: { executable: { kind: 'https://example.org/nope' } } },
      }),
    });
    const result = await response.json();
    expect(result.errors[0].message).toContain('/executable/kind: unknown kind');
    expect(result.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(result.errors[0].extensions.issues[0]).toMatchObject({ path: '/executable/kind', rule: 'kind' });
  });
});
