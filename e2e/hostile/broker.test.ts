/**
 * The broker under hostile input, over real HTTP: its IVOA REST API, its GraphQL subgraph and its
 * callback endpoint, each with `RUNS` generated requests.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '@srcnet/service-kit';
import { containerStep, testBroker } from '../../subgraphs/broker/test/harness.ts';
import {
  CLASSIC_ATTACKS,
  badIso,
  body,
  depth,
  expectHandled,
  expectHealthy,
  hugeString,
  kinds,
  mutated,
  PROPERTY_TIMEOUT,
  SHAPE_REGRESSIONS,
  problemsOf,
  send,
  settings,
  signedWith,
  signing,
  stopwatch,
  wrongValue,
  callbackSink,
  type HostileRequest,
} from './support.ts';

const NEVER = '1000000';
const SECRET = 'hostile-callback-secret';
let broker: Awaited<ReturnType<typeof testBroker>>;
let sink: Awaited<ReturnType<typeof callbackSink>>;
let url: string;
const clock = stopwatch('broker');

/**
 * A fresh broker for each group of endpoints, so that no group pays for the rows the one before
 * left. Its Skaha worker takes commands and never answers, and the simulated platform never
 * answers a prepare: only the test's callbacks move a notebook step.
 */
function freshBroker() {
  beforeAll(async () => {
    sink = await callbackSink();
    broker = await testBroker({
      // A short look-ahead keeps each valid request cheap: the inputs here are about refusals.
      BOOKING_BLOCK_SECONDS: '60',
      BOOKING_LOOKAHEAD_HOURS: '2',
      // Room for every valid request the properties make, so that the last ones still get offers.
      SITE_CORES: '10000000',
      SITE_MEMORY_GIB: '10000000',
      SITE_STORAGE_GIB: '1000000000',
      // Offers lapse at once and stop holding bookings: each request's cost stays that of the first.
      OFFER_TTL_SECONDS: '1',
      CALLBACK_SECRET: SECRET,
      SKAHA_WORKER_URL: new URL(sink.url).origin,
      SIMULATION_PREPARE_SECONDS: `executable=${NEVER},compute=${NEVER},storage=${NEVER},data=${NEVER}`,
      SIMULATION_RUN_SECONDS: NEVER,
      SIMULATION_RELEASE_SECONDS: NEVER,
    });
    url = broker.url;
  });
  afterAll(async () => {
    await broker?.stop();
    await sink?.close();
  });
}

afterAll(() => clock.report());
afterEach(async () => {
  await expectHealthy(url);
});

const REQUEST_PATHS = [
  ['executable'],
  ['executable', 'kind'],
  ['executable', 'image'],
  ['executable', 'image', 'locations'],
  ['executable', 'image', 'locations', '0'],
  ['executable', 'image', 'digest'],
  ['executable', 'command'],
  ['executable', 'environment'],
  ['compute'],
  ['compute', 'kind'],
  ['compute', 'cores'],
  ['compute', 'cores', 'min'],
  ['compute', 'cores', 'max'],
  ['compute', 'memory', 'min'],
  ['storage'],
  ['data'],
  ['data', '0', 'kind'],
  ['schedule'],
  ['schedule', 'requested'],
  ['schedule', 'requested', 'duration'],
  ['schedule', 'requested', 'start'],
  ['schedule', 'offered'],
  ['meta'],
  ['meta', 'uuid'],
  ['kind'],
] as const;

const request = containerStep();
const withCompute = {
  ...request,
  compute: {
    kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml',
    cores: { min: 1, max: 2 },
    memory: { min: 1, max: 2 },
  },
};
const requestDocuments = fc.oneof(
  { weight: 3, arbitrary: mutated(request, REQUEST_PATHS) },
  { weight: 2, arbitrary: mutated(withCompute, REQUEST_PATHS) },
  {
    weight: 2,
    arbitrary: fc.record({ duration: badIso, start: fc.option(badIso) }).map((requested) => ({
      ...request,
      schedule: { requested: requested.start === null ? { duration: requested.duration } : requested },
    })),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  {
    weight: 1,
    arbitrary: kinds.map((kind) => ({ ...request, executable: { ...request.executable, kind } })),
  },
);

const accept = fc.constantFrom(
  'application/json',
  'application/yaml',
  'text/html',
  '*/*',
  '',
  'application/json;q=0, */*',
);
const caller = fc.constantFrom(
  'Bearer dev:alice',
  'Bearer dev:bob',
  '',
  'Bearer',
  'Basic xyz',
  'Bearer dev:',
  `Bearer dev:${'u'.repeat(5000)}`,
);

const headersOf = (contentType: string, acceptType: string, authorization: string) => ({
  ...(contentType ? { 'content-type': contentType } : {}),
  ...(acceptType ? { accept: acceptType } : {}),
  ...(authorization ? { authorization } : {}),
});

describe('the broker REST API', () => {
  freshBroker();

  it(
    'POST /requests, /offersets and /direct answer every document with a 2xx/3xx or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('POST /requests /offersets /direct', () =>
        fc.assert(
          fc.asyncProperty(
            fc.constantFrom('/requests', '/offersets', '/direct'),
            body(requestDocuments, { yaml: true }),
            accept,
            caller,
            async (path, sent, acceptType, authorization) => {
              const answer = await send(url, {
                method: 'POST',
                path,
                headers: headersOf(sent.contentType, acceptType, authorization),
                body: sent.body,
              });
              expectHandled(answer, `POST ${path} ${String(sent.body).slice(0, 200)}`);
              const regression = SHAPE_REGRESSIONS.find((known) => known.body === sent.body);
              if (regression) {
                expect(answer.status, answer.text).toBe(400);
                expect(
                  problemsOf(answer.body, answer.text).map((problem) => problem.path),
                  answer.text,
                ).toContain(regression.path);
              }
            },
          ),
          {
            ...settings,
            examples: [
              ...CLASSIC_ATTACKS.map((attack) => ['/direct', attack, 'application/json', 'Bearer dev:alice']),
              ...SHAPE_REGRESSIONS.map(({ contentType, body }) => [
                '/requests',
                { contentType, body },
                'application/yaml',
                'Bearer dev:bob',
              ]),
            ] as [string, { contentType: string; body: string | Buffer }, string, string][],
          },
        ),
      );
    },
  );

  it(
    'POST /sessions/{id} answers every update with a 2xx or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const made = await send(url, {
        method: 'POST',
        path: '/requests',
        headers: headersOf('application/json', 'application/json', 'Bearer dev:alice'),
        body: JSON.stringify(request),
      });
      expect(made.status).toBe(303);
      const ids = (made.body as { offers: { meta: { uuid: string } }[] }).offers.map(
        (offer) => offer.meta.uuid,
      );
      expect(ids.length, made.text).toBeGreaterThan(0);
      const update = { kind: 'uri:enum-value-update', path: 'phase', value: 'REJECTED' };
      const updates = fc.oneof(
        mutated(update, [['kind'], ['path'], ['value']]),
        fc.record({
          kind: fc.constantFrom(
            'uri:enum-value-update',
            'uri:string-value-update',
            'uri:integer-value-update',
            'x',
          ),
          path: fc.constantFrom('phase', '/phase', 'schedule', '', '/'),
          value: fc.oneof(
            fc.constantFrom('ACCEPTED', 'REJECTED', 'CANCELLED', 'COMPLETED', 'accepted'),
            wrongValue,
          ),
        }),
      );
      await clock.time('POST /sessions/{id}', () =>
        fc.assert(
          fc.asyncProperty(
            fc.oneof(fc.constantFrom(...ids), badId),
            body(updates, { yaml: true }),
            accept,
            caller,
            async (id, sent, acceptType, authorization) => {
              const answer = await send(url, {
                method: 'POST',
                path: `/sessions/${id}`,
                headers: headersOf(sent.contentType, acceptType, authorization),
                body: sent.body,
              });
              expectHandled(answer, `POST /sessions/${id.slice(0, 80)} ${String(sent.body).slice(0, 200)}`);
            },
          ),
          {
            ...settings,
            examples: CLASSIC_ATTACKS.map((attack) => [
              ids[0]!,
              attack,
              'application/json',
              'Bearer dev:alice',
            ]),
          },
        ),
      );
    },
  );

  it(
    'GET /sessions/{id} and /offersets/{id} answer every id with 200 or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('GET /sessions/{id} /offersets/{id}', () =>
        fc.assert(
          fc.asyncProperty(
            fc.constantFrom('sessions', 'offersets'),
            badId,
            accept,
            caller,
            async (what, id, acceptType, authorization) => {
              const answer = await send(url, {
                method: 'GET',
                path: `/${what}/${id}`,
                headers: headersOf('', acceptType, authorization),
              });
              expectHandled(answer, `GET /${what}/${id.slice(0, 80)}`);
            },
          ),
          settings,
        ),
      );
    },
  );
});

/** Ids that are not ids: unicode, encoded slashes, broken escapes, huge, and uuids nobody has. */
const badId = fc.oneof(
  fc.uuid().map((id) => id),
  fc.string({ maxLength: 40 }).map((text) => encodeURIComponent(text) || 'x'),
  fc.constantFrom(
    '..%2f..%2fetc%2fpasswd',
    '%E0%A4%A',
    '%00',
    '%',
    'null',
    'undefined',
    '00000000-0000-0000-0000-000000000000',
    '%7B%7D',
  ),
  fc.integer({ min: 100, max: 70_000 }).map((n) => 'a'.repeat(n)),
);

describe('the broker GraphQL API', () => {
  freshBroker();

  const mutation = fc.constantFrom(
    'mutation ($r: ExecutionRequestInput!) { requestOffers(request: $r) { id result offers { id phase } } }',
    'mutation ($r: ExecutionRequestInput!) { executeDirect(request: $r) { id phase schedule { preparing { start } } } }',
    'query ($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id phase } } }',
    'query ($r: ID!) { executionStep(id: $r) { id history { at } } offerSet(id: $r) { id } }',
  );
  /** GraphQL variables: IVOA documents, GraphQL-shaped ones, and values of no shape at all. */
  const variables = fc.oneof(
    requestDocuments.map((r) => ({ r })),
    fc.jsonValue({ maxDepth: 3 }),
    wrongValue.map((r) => ({ r })),
    fc.constant(null),
  );
  const hostileQuery = fc.oneof(
    depth.map(
      (n) =>
        `{ ${'executionSteps { edges { node { offerSet { offers { '.repeat(Math.ceil(n / 5))} id ${'} } } } } '.repeat(Math.ceil(n / 5))}}`,
    ),
    depth.map(
      (n) =>
        `query { ${Array.from({ length: n }, (_, i) => `a${i}: executionStep(id: "x") { id }`).join(' ')} }`,
    ),
    depth.map((n) => `{ executionStep(id: "x") { id ${'@include(if: true) '.repeat(n)} } }`),
    depth.map(
      (n) => `query (${Array.from({ length: n }, (_, i) => `$v${i}: Int`).join(', ')}) { __typename }`,
    ),
    depth.map((n) => `{ ${'a '.repeat(n)} }`),
    depth.map(
      (n) =>
        `{ executionSteps(filter: ${'{ phase: ['.repeat(n)}OFFERED${'] }'.repeat(n)}) { edges { cursor } } }`,
    ),
    fc.constantFrom(
      '{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }',
      'query { executionSteps(first: -1) { edges { cursor } } }',
      'query { executionSteps(first: 2147483647, after: "Zm9v") { edges { cursor } } }',
      'query { executionSteps(filter: {createdAfter: "not a date"}) { edges { cursor } } }',
      'subscription { executionStepChanged { id } }',
      'mutation { acceptOffer(id: "not-a-uuid") { id } }',
      'mutation { cancelExecutionStep(id: "") { id } }',
      '{ _entities(representations: [{__typename: "ExecutionStep", id: {}}]) { __typename } }',
      '{ _entities(representations: [{__typename: "Nope"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "ExecutionStep"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "OfferSet", id: 5}, 7, null]) { __typename } }',
      '{ _entities(representations: [{__typename: "String", id: "x"}]) { __typename } }',
      'query A { __typename } query A { __typename }',
      'fragment F on Query { ...F } { ...F }',
      '',
      '{',
    ),
    fc.string({ maxLength: 200 }),
  );
  const envelope = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(mutation, variables).map(([query, v]) => JSON.stringify({ query, variables: v })),
    },
    { weight: 3, arbitrary: hostileQuery.map((query) => JSON.stringify({ query })) },
    {
      weight: 1,
      arbitrary: fc
        .record({
          query: wrongValue,
          variables: wrongValue,
          operationName: wrongValue,
          extensions: wrongValue,
        })
        .map((e) => JSON.stringify(e)),
    },
  );

  it(
    'answers every operation without a 5xx, and every error has a message',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('POST /graphql', () =>
        fc.assert(
          fc.asyncProperty(
            body(fc.constant(null)).map((b) => b),
            envelope,
            fc.boolean(),
            caller,
            async (raw, text, useRaw, authorization) => {
              const sent = useRaw ? raw : { contentType: 'application/json', body: text };
              const answer = await send(url, {
                method: 'POST',
                path: '/graphql',
                headers: headersOf(
                  sent.contentType,
                  'application/graphql-response+json, application/json',
                  authorization,
                ),
                body: sent.body,
              });
              expectHandled(answer, `POST /graphql ${String(sent.body).slice(0, 300)}`);
              const errors =
                (
                  answer.body as {
                    errors?: { message?: string; extensions?: { issues?: { path: string }[] } }[];
                  }
                )?.errors ?? [];
              for (const error of errors) {
                expect(error.message?.trim(), text.slice(0, 300)).toBeTruthy();
                // "Unexpected error." is what a masked crash looks like: a bug, not an answer.
                expect(error.message, text.slice(0, 300)).not.toBe('Unexpected error.');
                for (const issue of error.extensions?.issues ?? []) expect(issue.path).toMatch(/^\//);
              }
            },
          ),
          settings,
        ),
      );
    },
  );

  it(
    'GET /graphql with hostile query strings answers without a 5xx',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('GET /graphql', () =>
        fc.assert(
          fc.asyncProperty(
            hostileQuery,
            fc.option(fc.string({ maxLength: 50 })),
            async (query, variables) => {
              const params = new URLSearchParams({ query: query.slice(0, 6000) });
              if (variables !== null) params.set('variables', variables);
              const answer = await send(url, {
                method: 'GET',
                path: `/graphql?${params}`,
                headers: { accept: 'application/graphql-response+json' },
              });
              expectHandled(answer, `GET /graphql ${query.slice(0, 200)}`);
            },
          ),
          settings,
        ),
      );
    },
  );
});

describe('the broker callback endpoint', () => {
  freshBroker();

  /**
   * A notebook step accepted for direct execution. Both its components are the Skaha worker's,
   * which here takes commands and never answers: only the test's callbacks change the step.
   */
  async function preparingStep() {
    const notebook = {
      ...withCompute,
      executable: {
        kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml',
        location: 'https://example.org/hello.ipynb',
      },
    };
    const made = await send(url, {
      method: 'POST',
      path: '/direct',
      headers: headersOf('application/json', 'application/json', 'Bearer dev:alice'),
      body: JSON.stringify(notebook),
    });
    expect(made.status, made.text).toBe(303);
    const document = made.body as {
      meta: { uuid: string };
      executable: { meta: { uuid: string } };
      compute: { meta: { uuid: string } };
    };
    return {
      id: document.meta.uuid,
      components: [document.executable.meta.uuid, document.compute.meta.uuid],
    };
  }

  const phase = fc.constantFrom(
    'INITIALIZING',
    'WAITING',
    'PREPARING',
    'AVAILABLE',
    'RUNNING',
    'RELEASING',
    'COMPLETED',
    'FAILED',
    'CANCELLED',
  );

  it(
    'refuses bad and missing signatures and malformed callbacks with a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const step = await preparingStep();
      const callback = {
        eventId: 'e',
        stepId: step.id,
        componentUuid: step.components[0],
        phase: 'PREPARING',
        sequence: 1,
        at: new Date().toISOString(),
      };
      const callbacks = fc.oneof(
        mutated(callback, [
          ['eventId'],
          ['stepId'],
          ['componentUuid'],
          ['phase'],
          ['sequence'],
          ['at'],
          ['message'],
          ['progress'],
          ['progress', 'bytesDone'],
          ['connectors'],
          ['observation'],
          ['observation', 'params'],
        ]),
        fc.record({
          stepId: fc.oneof(fc.constant(step.id), fc.uuid()),
          componentUuid: fc.oneof(fc.constantFrom(...step.components), fc.uuid()),
          phase,
          sequence: fc.oneof(fc.nat(), fc.constantFrom(2 ** 53 - 1, 1e300)),
          at: fc.oneof(
            fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            badIso,
          ),
          message: fc.option(hugeString(200_000), { nil: undefined }),
        }),
      );
      await clock.time('POST /callbacks', () =>
        fc.assert(
          fc.asyncProperty(body(callbacks), signing, fc.uuid(), async (sent, how, eventId) => {
            let text = typeof sent.body === 'string' ? sent.body : sent.body.toString('latin1');
            // A callback whose event id is the header's, so that a valid signature gets past the check.
            if (text.startsWith('{"eventId":"e"'))
              text = text.replace('"eventId":"e"', `"eventId":"${eventId}"`);
            const payload = typeof sent.body === 'string' ? text : sent.body;
            const headers = {
              ...signedWith(
                how,
                SECRET,
                typeof payload === 'string' ? payload : payload.toString('utf8'),
                eventId,
              ),
            };
            if (sent.contentType) headers['content-type'] = sent.contentType;
            const answer = await send(url, { method: 'POST', path: '/callbacks', headers, body: payload });
            expectHandled(answer, `POST /callbacks (${how}) ${text.slice(0, 200)}`);
            if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
          }),
          {
            ...settings,
            examples: CLASSIC_ATTACKS.map((attack) => [attack, 'valid' as const, randomUUID()]),
          },
        ),
      );
    },
  );

  it(
    'a replayed signed callback changes nothing the second time',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      let step = await preparingStep();
      let run = 0;
      const snapshot = async (id: string) => ({
        step: (await broker.broker.steps([id]))[0],
        history: (await broker.broker.history([id])).get(id),
      });
      await clock.time('POST /callbacks replayed', () =>
        fc.assert(
          fc.asyncProperty(
            phase,
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: 1 }),
            fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
            async (callbackPhase, sequence, component, message) => {
              // A fresh step now and then, before the callbacks have run the last one to its end.
              if (run++ % 40 === 0) step = await preparingStep();
              const callback = {
                eventId: randomUUID(),
                stepId: step.id,
                componentUuid: step.components[component]!,
                phase: callbackPhase,
                sequence,
                at: new Date().toISOString(),
                ...(message === undefined ? {} : { message }),
              };
              const text = JSON.stringify(callback);
              const request: HostileRequest = {
                method: 'POST',
                path: '/callbacks',
                headers: signedHeaders(SECRET, text, callback.eventId),
                body: text,
              };
              const first = await send(url, request);
              expectHandled(first, `first ${text}`);
              const before = await snapshot(step.id);
              const again = await send(url, request);
              expectHandled(again, `replay ${text}`);
              if (first.status === 202) expect(again.body).toEqual({ outcome: 'ignored' });
              else expect(again.status).toBe(first.status);
              expect(await snapshot(step.id)).toEqual(before);
            },
          ),
          settings,
        ),
      );
    },
  );
});
