import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { collect, testStack } from './support/stack.ts';

const JWT = {
  AUTH_MODE: 'jwt',
  JWT_SECRET: 'a-test-secret-of-enough-length-0123456789',
  JWT_ISSUER: 'https://iam.example',
  JWT_AUDIENCE: 'srcnet',
  GATEWAY_SECRET: 'gateway-test-secret',
};
const token = (
  claims: Record<string, unknown>,
  options: { issuer?: string; audience?: string; expires?: string } = {},
) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(options.issuer ?? JWT.JWT_ISSUER)
    .setAudience(options.audience ?? JWT.JWT_AUDIENCE)
    .setExpirationTime(options.expires ?? '5m')
    .sign(new TextEncoder().encode(JWT.JWT_SECRET));
const STEP = (id: string) => `{ executionStep(id: "${id}") { id meta { owner } skahaSession { status } } }`;

describe('dev mode', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    stack = await testStack();
  });
  afterAll(() => stack.close());

  it('reads Bearer dev:<user>, takes no header as user dev, and refuses anything else', async () => {
    const step = stack.broker.create('alice');
    expect((await stack.post(STEP(step.id), {}, 'dev:alice')).body.data.executionStep.meta.owner).toBe(
      'alice',
    );
    expect(stack.worker.stats.lastIdentity).toEqual({ user: 'alice', roles: [] });
    expect((await stack.post(STEP(step.id), {}, 'dev:bob')).body.data.executionStep).toBeNull();
    const anonymous = stack.broker.create('dev');
    expect((await stack.post(STEP(anonymous.id))).body.data.executionStep.meta.owner).toBe('dev');
    expect(stack.worker.stats.lastIdentity).toEqual({ user: 'dev', roles: [] });
    const refused = await stack.post(STEP(step.id), {}, 'not-a-dev-token');
    expect(refused.status).toBe(401);
    expect(refused.body.errors[0]).toMatchObject({
      message: 'in dev mode the Authorization header must be "Bearer dev:<user>"',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });
});

describe('several callers at once', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    stack = await testStack();
  });
  afterAll(() => stack.close());

  it('gives each caller only their own steps when different callers send the same query at the same moment', async () => {
    const users = ['una', 'vic', 'wes', 'xan'];
    for (const user of users) for (let n = 0; n < 3; n++) stack.broker.create(user);
    // The same query from everyone: a gateway that shared in-flight subgraph requests across
    // callers would hand one caller's answer to the others.
    const query =
      '{ executionSteps(first: 50) { edges { node { meta { owner } skahaSession { status } } } } }';
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => users[i % users.length]!).map(async (user) => ({
        user,
        answer: await stack.post(query, {}, `dev:${user}`),
      })),
    );
    const strangers = answers.flatMap(({ user, answer }) =>
      (answer.body.data.executionSteps.edges as { node: { meta: { owner: string } } }[])
        .map((edge) => edge.node.meta.owner)
        .filter((owner) => owner !== user)
        .map((owner) => `${user} got ${owner}'s step`),
    );
    expect(strangers).toEqual([]);
    expect(answers.every(({ answer }) => answer.body.data.executionSteps.edges.length === 3)).toBe(true);
  });
});

describe('jwt mode', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    stack = await testStack({ env: JWT, subgraphMode: 'jwt' });
  });
  afterAll(() => stack.close());

  it('verifies the token, takes roles from the claim, and signs the identity to every subgraph', async () => {
    const step = stack.broker.create('alice');
    const alice = await token({ sub: 'alice', roles: ['scientist'] });
    const answer = await stack.post(STEP(step.id), {}, alice);
    expect(answer.body).toEqual({
      data: { executionStep: { id: step.id, meta: { owner: 'alice' }, skahaSession: { status: 'Pending' } } },
    });
    expect(stack.worker.stats.lastIdentity).toEqual({ user: 'alice', roles: ['scientist'] });
    const admin = await token({ sub: 'operator', roles: 'admin ops' });
    expect((await stack.post(STEP(step.id), {}, admin)).body.data.executionStep.id).toBe(step.id);
    expect(stack.worker.stats.unsigned).toBe(0);
  });

  it('refuses a missing, expired, foreign or mis-addressed token, saying which check failed', async () => {
    const cases: [string | undefined, RegExp][] = [
      [undefined, /a bearer token is required/],
      [await token({ sub: 'a' }, { expires: '-1m' }), /not valid: "exp" claim timestamp check failed/],
      [
        await token({ sub: 'a' }, { issuer: 'https://evil.example' }),
        /not valid: unexpected "iss" claim value/,
      ],
      [await token({ sub: 'a' }, { audience: 'other' }), /not valid: unexpected "aud" claim value/],
      [await token({ roles: [] }), /no "sub" claim/],
    ];
    for (const [bearer, message] of cases) {
      const answer = await stack.post('{ executionSteps { edges { cursor } } }', {}, bearer);
      expect(answer.status).toBe(401);
      expect(answer.body.errors[0].message).toMatch(message);
    }
  });

  it('takes the token from graphql-ws connectionParams', async () => {
    const step = stack.broker.create('carol');
    await new Promise((done) => setTimeout(done, 100));
    const watch = collect(
      stack.ws(await token({ sub: 'carol' })),
      'subscription { executionStepChanged { id } }',
    );
    await watch.until(1);
    expect(watch.events[0]?.data).toEqual({ executionStepChanged: { id: step.id } });
    watch.stop();
    const anonymous = collect(stack.ws(), 'subscription { executionStepChanged { id } }');
    await anonymous.until(1);
    expect(JSON.stringify(anonymous.events.concat(anonymous.ended as never))).toContain(
      'a bearer token is required',
    );
  });

  it('a subgraph refuses a direct call that the gateway did not sign', async () => {
    const response = await fetch(stack.broker.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev:alice' },
      body: JSON.stringify({ query: '{ executionSteps { edges { cursor } } }' }),
    });
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).toBe('this service accepts only requests signed by the gateway');
  });
});
