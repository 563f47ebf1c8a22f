import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStack } from './support/stack.ts';

const INTROSPECT = '{ __schema { queryType { name } } }';

describe('the gateway server', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    stack = await testStack();
  });
  afterAll(() => stack.close());
  const at = (path: string, init?: RequestInit) => fetch(stack.gateway.url.replace('/graphql', path), init);

  it('answers /healthz and /readyz once the supergraph is loaded', async () => {
    expect((await at('/healthz')).status).toBe(200);
    expect((await at('/readyz')).status).toBe(200);
  });

  it("opens GraphiQL on a browser's GET of /graphql, served from the package (no CDN), with the client's operations, the dev identity and SSE subscriptions", async () => {
    const page = await (await at('/graphql', { headers: { accept: 'text/html' } })).text();
    expect(page).toContain('SRCNet execution gateway');
    expect(page).toContain('subscription ExecutionStepChanged');
    expect(page).toContain('mutation RequestOffers');
    expect(page).toContain('"subscriptionsProtocol":"SSE"');
    expect(page).toContain('Bearer dev:alice');
    expect(page).not.toContain('unpkg.com');
    expect((await stack.post(INTROSPECT)).body.data.__schema.queryType.name).toBe('Query');
  });

  it('serves Prometheus metrics with requests and errors', async () => {
    await stack.post('{ nope }');
    const text = await (await at('/metrics')).text();
    expect(text).toMatch(/^gateway_requests_total \d+/m);
    expect(text).toMatch(/^gateway_errors_total\{code="GRAPHQL_VALIDATION_FAILED"\} \d+/m);
  });
});

describe('in production', () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    stack = await testStack({ env: { NODE_ENV: 'production' } });
  });
  afterAll(() => stack.close());

  it('has no sandbox, no introspection and no field suggestions', async () => {
    const page = await fetch(stack.gateway.url, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('GraphiQL');
    const introspection = await stack.post(INTROSPECT);
    expect(introspection.body.errors[0].message).toMatch(/introspection/i);
    const typo = await stack.post('{ executionStp(id: "x") { id } }');
    expect(typo.body.errors[0].message).not.toContain('Did you mean');
  });

  it('hides internals when a subgraph fails', async () => {
    await stack.worker.close();
    const step = stack.broker.create('alice');
    const answer = await stack.post(
      `{ executionStep(id: "${step.id}") { id skahaSession { status } } }`,
      {},
      'dev:alice',
    );
    expect(answer.body.data.executionStep.id).toBe(step.id);
    const text = JSON.stringify(answer.body.errors);
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toMatch(/stack|ECONNREFUSED|at .*\.js/);
  });
});
