/**
 * Owner isolation and limits with real identities: the stack runs in JWT mode (the gateway
 * verifies tokens, the subgraphs trust only identities the gateway signed). Bob cannot read,
 * subscribe to or cancel Alice's step through the gateway, through a subgraph's `_entities`, or
 * by calling a subgraph without the gateway's signature; over-deep and over-costly queries are
 * refused with a message naming the limit.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signIdentity } from '@srcnet/service-kit';
import { startE2EStack, subscribe, type E2EStack, STACK_START_MS } from '../support/stack.ts';

const SECRETS = {
  AUTH_MODE: 'jwt',
  JWT_SECRET: 'e2e-jwt-secret-of-enough-length-0123456789',
  JWT_ISSUER: 'https://iam.e2e.example',
  JWT_AUDIENCE: 'srcnet-e2e',
  GATEWAY_SECRET: 'e2e-gateway-secret',
  CALLBACK_SECRET: 'e2e-callback-secret',
  SKAHA_TOKEN: 'dev:skaha-service',
  PREPAREDATA_TOKEN: 'dev:preparedata-service',
  SKAHA_CALLBACK_SECRET: 'e2e-skaha-callback-secret',
  PREPAREDATA_CALLBACK_SECRET: 'e2e-preparedata-callback-secret',
  HARBOR_WEBHOOK_SECRET: 'e2e-harbor-webhook-secret',
};

const jwt = (user: string) =>
  new SignJWT({ sub: user, roles: [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(SECRETS.JWT_ISSUER)
    .setAudience(SECRETS.JWT_AUDIENCE)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRETS.JWT_SECRET));

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
const NOTEBOOK = {
  executable: {
    kind: `${KIND}executable/jupyter-notebook.yaml`,
    location: 'https://example.org/notebook.ipynb',
  },
  schedule: { requested: { duration: 'PT30M' } },
};

let stack: E2EStack;
let alice: string;
let bob: string;
let stepId: string;
let failed = false;

beforeAll(async () => {
  stack = await startE2EStack({
    name: 'isolation',
    customise: (specs) => specs.map((spec) => ({ ...spec, env: { ...SECRETS, ...spec.env } })),
  });
  [alice, bob] = await Promise.all([jwt('alice'), jwt('bob')]);
  const made = await stack.graphql(
    'mutation Run($request: ExecutionRequestInput!) { executeDirect(request: $request) { id meta { owner } } }',
    { request: NOTEBOOK },
    alice,
  );
  expect(made.body.errors).toBeUndefined();
  stepId = made.body.data.executeDirect.id;
  expect(made.body.data.executeDirect.meta.owner).toBe('alice');
}, STACK_START_MS);
afterAll(() => stack?.stop(failed));

const guard = (test: () => Promise<void>) => async () => {
  try {
    await test();
  } catch (error) {
    failed = true;
    throw error;
  }
};

const STEP = /* GraphQL */ `
  query Step($id: ID!) {
    executionStep(id: $id) {
      id
      phase
      meta {
        owner
      }
      skahaSession {
        status
      }
      image {
        copyState
      }
      dataStaging {
        state
      }
    }
  }
`;

describe('owner isolation through the gateway', () => {
  it(
    'Alice reads her step with fields from every subgraph; Bob gets nothing',
    guard(async () => {
      const mine = await stack.graphql(STEP, { id: stepId }, alice);
      expect(mine.body.errors).toBeUndefined();
      expect(mine.body.data.executionStep).toMatchObject({ id: stepId, meta: { owner: 'alice' } });
      const theirs = await stack.graphql(STEP, { id: stepId }, bob);
      expect(theirs.body.data.executionStep).toBeNull();
      const list = await stack.graphql('{ executionSteps(first: 50) { edges { node { id } } } }', {}, bob);
      expect(
        list.body.data.executionSteps.edges.map((edge: { node: { id: string } }) => edge.node.id),
      ).not.toContain(stepId);
    }),
  );

  it(
    'Bob cannot subscribe to her step, and his all-steps subscription never shows it',
    guard(async () => {
      const one = subscribe(
        stack.ws(bob),
        'subscription S($id: ID) { executionStepChanged(id: $id) { id phase } }',
        {
          id: stepId,
        },
      );
      await one
        .until((events) => events.length > 0 || Boolean(one.ended), 'an answer', 10_000)
        .catch(() => []);
      expect(one.events.flatMap((event) => event.data?.executionStepChanged ?? [])).toEqual([]);
      expect(one.events[0]?.errors?.[0]?.message ?? String(one.ended)).toMatch(/no step|not found/i);

      const all = subscribe(stack.ws(bob), 'subscription { executionStepChanged { id phase } }');
      const cancelled = await stack.graphql(
        'mutation C($id: ID!) { cancelExecutionStep(id: $id) { id phase } }',
        { id: stepId },
        alice,
      );
      expect(cancelled.body.data.cancelExecutionStep.phase).toMatch(/CANCELLED|RELEASING/);
      await new Promise((done) => setTimeout(done, 1500));
      expect(all.events.filter((event) => event.data?.executionStepChanged.id === stepId)).toEqual([]);
    }),
  );

  it(
    'Bob cannot cancel her step',
    guard(async () => {
      const other = await stack.graphql(
        'mutation Run($request: ExecutionRequestInput!) { executeDirect(request: $request) { id } }',
        { request: NOTEBOOK },
        alice,
      );
      const id = other.body.data.executeDirect.id;
      const refused = await stack.graphql(
        'mutation C($id: ID!) { cancelExecutionStep(id: $id) { id phase } }',
        { id },
        bob,
      );
      expect(refused.body.data?.cancelExecutionStep ?? null).toBeNull();
      expect(refused.body.errors?.[0]?.message).toMatch(/no step|not found/i);
      const still = await stack.graphql(STEP, { id }, alice);
      expect(still.body.data.executionStep.phase).not.toBe('CANCELLED');
    }),
  );
});

describe('subgraphs called directly', () => {
  const entities = (selection: string) =>
    `query E($representations: [_Any!]!) { _entities(representations: $representations) { ... on ExecutionStep { ${selection} } } }`;
  const call = (port: number, headers: Record<string, string>, selection = 'id') =>
    fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({
        query: entities(selection),
        variables: { representations: [{ __typename: 'ExecutionStep', id: stepId }] },
      }),
    });

  it(
    'refuse a caller without the gateway signature, even with a valid user token',
    guard(async () => {
      for (const port of [
        stack.ports.broker,
        stack.ports.skaha,
        stack.ports.preparedata,
        stack.ports.harbor,
      ]) {
        const response = await call(port, { authorization: `Bearer ${bob}` });
        const body = (await response.json()) as { data?: unknown; errors?: { message: string }[] };
        expect(body.data ?? null, `port ${port}`).toBeNull();
        expect(body.errors?.[0]?.message, `port ${port}`).toMatch(/signed|signature|identity|authenticat/i);
      }
    }),
  );

  it(
    'refuse a forged signature, and give Bob nothing through _entities when the gateway vouches for him',
    guard(async () => {
      const forged = await call(
        stack.ports.skaha,
        signIdentity('not-the-secret', { user: 'alice', roles: [] }),
        'skahaSession { status }',
      );
      expect(((await forged.json()) as { data?: unknown }).data ?? null).toBeNull();
      const asBob = await call(
        stack.ports.skaha,
        signIdentity(SECRETS.GATEWAY_SECRET, { user: 'bob', roles: [] }),
        'skahaSession { status }',
      );
      const body = (await asBob.json()) as { data: { _entities: ({ skahaSession: unknown } | null)[] } };
      expect(body.data._entities[0]?.skahaSession ?? null).toBeNull();
    }),
  );
});

describe('limits', () => {
  it(
    'refuses an over-deep query naming the limit',
    guard(async () => {
      // offerSet → offers → offerSet … is a cycle in the graph: depth without limit.
      const deep = `query Deep($id: ID!) { executionStep(id: $id) { ${'offerSet { offers { '.repeat(7)}id${' } }'.repeat(7)} } }`;
      const answer = await stack.graphql(deep, { id: stepId }, alice);
      expect(answer.body.data ?? null).toBeNull();
      expect(answer.body.errors?.[0]?.message).toMatch(/depth limit of 12 exceeded/i);
    }),
  );

  it(
    'refuses an over-costly query naming the limit',
    guard(async () => {
      const fields = Array.from(
        { length: 19 },
        (_, i) =>
          `a${i}: executionSteps(first: 100) { edges { node { id phase history { from to at cause } meta { owner created modified } } } }`,
      );
      const answer = await stack.graphql(`{ ${fields.join(' ')} }`, {}, alice);
      expect(answer.body.data ?? null).toBeNull();
      expect(answer.body.errors?.[0]?.message).toMatch(/cost limit of 50000 exceeded/i);
    }),
  );

  it(
    'refuses a request without a valid token',
    guard(async () => {
      const anonymous = await stack.graphql(STEP, { id: stepId });
      expect(anonymous.status).toBe(401);
      const wrong = await stack.graphql(STEP, { id: stepId }, 'dev:alice');
      expect(wrong.status).toBe(401);
      expect(wrong.body.errors?.[0]?.message).toMatch(/bearer token is not valid/);
    }),
  );
});
