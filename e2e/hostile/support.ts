/**
 * Generators of malformed and hostile requests, and the properties every service must hold
 * against them: never a 5xx, never a crash, and every rejection says what is wrong.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { parse } from 'yaml';
import { expect } from 'vitest';
import { signedHeaders } from '@srcnet/service-kit';

/** Inputs per endpoint: the issue's 10,000 in CI, fewer locally so that `npm test` stays quick. */
export const RUNS = process.env.CI === 'true' ? 10_000 : 1_000;

/** Room for one property's runs on a busy machine. */
export const PROPERTY_TIMEOUT = RUNS * 100;

const clip = (text: string, max = 400) =>
  text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;

/**
 * fast-check's settings for every property here. Counterexamples can be megabytes long: the
 * report clips them, and keeps the seed and path that replay the failure.
 */
export const settings: fc.Parameters<unknown> = {
  numRuns: RUNS,
  endOnFailure: true,
  // One fixed seed, so that a CI run fails only on a change and not on the draw. HOSTILE_SEED=random
  // explores new inputs; HOSTILE_SEED and HOSTILE_PATH copied from a report replay its failure.
  ...(process.env.HOSTILE_SEED === 'random' ? {} : { seed: Number(process.env.HOSTILE_SEED ?? 20261129) }),
  ...(process.env.HOSTILE_PATH ? { path: process.env.HOSTILE_PATH } : {}),
  reporter(details) {
    if (!details.failed) return;
    const example = ((details.counterexample ?? []) as unknown[]).map((value) => clip(fc.stringify(value)));
    // HOSTILE_DUMP=<file> keeps the whole counterexample, to replay it by hand.
    if (process.env.HOSTILE_DUMP)
      writeFileSync(process.env.HOSTILE_DUMP, fc.stringify(details.counterexample));
    const cause =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      `property failed after ${details.numRuns} runs (seed ${details.seed}, path "${details.counterexamplePath}")\n` +
        `counterexample: ${example.join(', ')}\ncause: ${clip(cause, 1500)}`,
    );
  },
};

/** One HTTP request as the properties send it. */
export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface Answer {
  status: number;
  text: string;
  /** The body read as JSON or YAML; undefined when it is neither. */
  body: unknown;
}

export async function send(baseUrl: string, request: HostileRequest): Promise<Answer> {
  const response = await fetch(`${baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers,
    redirect: 'manual',
    ...(request.body === undefined
      ? {}
      : { body: typeof request.body === 'string' ? request.body : new Uint8Array(request.body) }),
  });
  const text = await response.text();
  return { status: response.status, text, body: readAnswer(text, response.headers.get('content-type')) };
}

/** The body as JSON or YAML, by its type; plain text stays text (YAML would read "a: b" as a map). */
function readAnswer(text: string, type: string | null): unknown {
  try {
    if (/json/i.test(type ?? '')) return JSON.parse(text);
    if (/yaml/i.test(type ?? '')) return parse(text, { maxAliasCount: 10 });
  } catch {
    return undefined;
  }
  return undefined;
}

/** What a rejection says, in every shape the services answer with. */
export function problemsOf(body: unknown, text: string): { message: string; path?: string }[] {
  if (body === null || typeof body !== 'object') return text.trim() ? [{ message: text.trim() }] : [];
  const record = body as Record<string, unknown>;
  const found: { message: string; path?: string }[] = [];
  const add = (message: unknown, path?: unknown) => {
    if (typeof message === 'string') found.push({ message, ...(typeof path === 'string' ? { path } : {}) });
  };
  // Broker REST: {status, messages: [MessageItem]}; the values of a validation message name the path.
  for (const item of asArray(record['messages'])) {
    const values = (item as { values?: Record<string, unknown> }).values ?? {};
    add((item as { message?: unknown }).message, values['path']);
  }
  // Broker POST /direct that cannot be met: a FAILED session whose meta.messages say why.
  const meta = record['meta'] as { messages?: unknown } | undefined;
  for (const item of asArray(meta?.messages)) add((item as { message?: unknown }).message);
  // GraphQL: {errors: [{message, extensions: {issues}}]}.
  for (const error of asArray(record['errors'])) add((error as { message?: unknown }).message);
  // Workers: {error} or {issues: [{path, rule, message}]}; Fastify: {message}.
  add(record['error']);
  for (const issue of asArray(record['issues'])) {
    const { path, message } = issue as { path?: unknown; message?: unknown };
    add(typeof message === 'string' && typeof path === 'string' ? `${path}: ${message}` : message, path);
  }
  if (found.length === 0) add(record['message']);
  return found;
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/**
 * The property every answer holds: no 5xx (unless `allowed` says this one is part of the
 * contract), and a 4xx that names what is wrong; a validation rejection names the field's path.
 */
export function expectHandled(
  answer: Answer,
  context: string,
  allowed: (answer: Answer) => boolean = () => false,
) {
  const where = `${context} → ${answer.status} ${answer.text.slice(0, 300)}`;
  if (answer.status >= 500 && allowed(answer)) return;
  expect(answer.status, where).toBeLessThan(500);
  if (answer.status < 400) return;
  const problems = problemsOf(answer.body, answer.text);
  expect(problems.length, `no message: ${where}`).toBeGreaterThan(0);
  for (const problem of problems) {
    expect(problem.message.trim(), `empty message: ${where}`).not.toBe('');
    if (problem.path !== undefined) expect(problem.path, `bad path: ${where}`).toMatch(/^\//);
  }
  // A validation rejection of the broker (urn:invalid:<rule>) always carries its path.
  for (const item of asArray((answer.body as { messages?: unknown } | undefined)?.messages)) {
    const { kind, values } = item as { kind?: string; values?: { path?: unknown } };
    if (kind?.startsWith('urn:invalid:')) expect(values?.path, `no path: ${where}`).toMatch(/^\//);
  }
}

export async function expectHealthy(baseUrl: string) {
  const response = await fetch(`${baseUrl}/healthz`);
  expect(response.status).toBe(200);
}

// ---- values ---------------------------------------------------------------------------------

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

export const kinds = fc.constantFrom(
  `${KIND}executable/docker-container.yaml`,
  `${KIND}executable/jupyter-notebook.yaml`,
  `${KIND}executable/singularity-container.yaml`,
  `${KIND}compute/simple-compute-resource.yaml`,
  `${KIND}storage/simple-storage-resource.yaml`,
  `${KIND}data/simple-data-resource.yaml`,
  `${KIND}data/skao-data-resource.yaml`,
  'https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/docker-container-1.0',
  'urn:docker-container',
  `${KIND}executable/unknown.yaml`,
  `${KIND}../../etc/passwd`,
  '',
  'uri:enum-value-update',
);

/** Strings that look like ISO-8601 instants, durations or intervals and are not, or are extreme. */
export const badIso = fc.constantFrom(
  'P',
  'PT',
  'T1H',
  'PT-1H',
  'PT1.5.5H',
  'P1Y2M3DT',
  'PT0S',
  'PT0.000001S',
  'P99999999999999999999Y',
  'PT9999999999999999H',
  'P1W2D',
  '1 hour',
  '2025-13-01T00:00:00Z',
  '2025-02-30T00:00:00Z',
  '2025-11-25T25:61:61Z',
  '2025-11-25T05:13:00',
  '+275760-09-13T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '0000-01-01T00:00:00Z',
  '1970-01-01T00:00:00Z',
  '2025-11-25T05:14:00Z/',
  '/PT2H',
  '2025-11-25T05:14:00Z/PT2H/PT1H',
  '2025-11-25T05:14:00Z/2025-11-24T05:14:00Z',
  'PT2H/PT1H',
  'R5/2025-11-25T05:14:00Z/PT1H',
  '2025-11-25T05:14:00+99:00',
);

/**
 * A long string of one filler: mostly up to 64 KB, sometimes just over the 1 MB body limits (the
 * sizes that matter; larger ones only cost the test time).
 */
export const hugeString = (max = 1_100_000) =>
  fc
    .tuple(
      fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 1024, max: Math.min(max, 64 * 1024) }) },
        { weight: 1, arbitrary: fc.integer({ min: Math.min(max, 1024 * 1024), max }) },
      ),
      fc.constantFrom('x', 'é', '\u0000', '😀', '"', '\\', '\n'),
    )
    .map(([length, filler]) => filler.repeat(Math.ceil(length / filler.length)));

/** Values of the wrong type for any field, and some of the right type but absurd. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, -0.000001, 2 ** 53 + 2, 1e308, -1e308, '', ' ', [], {}),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  badIso,
  kinds,
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 100, max: 2_000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
);

/** Nested JSON of the given depth, as text (JSON.stringify itself would recurse that deep). */
export const deepJson = (depth: number, open: '[' | '{"a":') => {
  const close = open === '[' ? ']' : '}';
  return open.repeat(depth) + '1' + close.repeat(depth);
};

/** Nesting depths: mostly around the limits (64), sometimes the thousands that break recursion. */
export const depth = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 100 }) },
  { weight: 1, arbitrary: fc.constantFrom(1000, 5000, 10_000, 20_000) },
);

/**
 * A valid document with one hostile change: a field set to a wrong or absurd value, removed, or an
 * unknown field added, at a path that may not exist yet.
 */
export function mutated(base: unknown, paths: readonly (readonly string[])[]): fc.Arbitrary<unknown> {
  const change = fc.oneof(
    fc.record({ op: fc.constant('set' as const), value: wrongValue }),
    fc.record({ op: fc.constant('delete' as const) }),
    fc.record({
      op: fc.constant('unknown' as const),
      key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype')),
      value: wrongValue,
    }),
  );
  const path = fc.oneof(
    fc.constantFrom(...paths),
    fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('0', '1', '__proto__')), {
      minLength: 1,
      maxLength: 4,
    }),
  );
  return fc.tuple(fc.array(fc.tuple(path, change), { minLength: 1, maxLength: 3 })).map(([changes]) => {
    const document = structuredClone(base) as Record<string, unknown>;
    for (const [where, what] of changes) {
      let node: Record<string, unknown> = document;
      for (const key of where.slice(0, -1)) {
        const next = Object.prototype.hasOwnProperty.call(node, key) ? node[key] : undefined;
        if (next === null || typeof next !== 'object') {
          const created: Record<string, unknown> = {};
          Object.defineProperty(node, key, {
            value: created,
            enumerable: true,
            writable: true,
            configurable: true,
          });
          node = created;
        } else node = next as Record<string, unknown>;
      }
      const last = where.at(-1)!;
      const define = (key: string, value: unknown) =>
        Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      if (what.op === 'set') define(last, what.value);
      else if (what.op === 'delete') delete node[last];
      else define(what.key, what.value);
    }
    return document;
  });
}

/** A YAML billion-laughs document: ten levels of ten aliases each. */
export const yamlBomb = (levels = 10) => {
  const lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < levels; i++)
    lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(',')}]`);
  return lines.join('\n') + '\n';
};

/** Bytes that are not UTF-8 at all, sent with a JSON content type. */
export const invalidUtf8 = fc
  .uint8Array({ minLength: 1, maxLength: 64 })
  .map((bytes) =>
    Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), bytes, Buffer.from('"}')]),
  );

/**
 * A body as bytes on the wire with its content type: the JSON of a value, or something that is not
 * the JSON it claims to be.
 */
export function body(documents: fc.Arbitrary<unknown>, options: { yaml?: boolean } = {}) {
  const json = 'application/json';
  const asJson = documents.map((value) => ({ contentType: json, body: JSON.stringify(value) ?? 'null' }));
  const hostile = fc.oneof(
    depth.chain((n) =>
      fc
        .constantFrom('[' as const, '{"a":' as const)
        .map((open) => ({ contentType: json, body: deepJson(n, open) })),
    ),
    hugeString().map((filler) => ({ contentType: json, body: JSON.stringify({ filler }) })),
    invalidUtf8.map((bytes) => ({ contentType: json, body: bytes as string | Buffer })),
    fc.string({ maxLength: 200 }).map((text) => ({ contentType: json, body: text })),
    fc
      .constantFrom(
        '',
        ' ',
        'null',
        '[]',
        '"x"',
        '1e999',
        '{"a":1,"a":2}',
        '{',
        '}{',
        '\uFEFF{}',
        '{"__proto__":{"x":1}}',
      )
      .map((text) => ({ contentType: json, body: text })),
    fc
      .constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        '*/*',
        'application/json, application/yaml',
      )
      .chain((contentType) => documents.map((value) => ({ contentType, body: JSON.stringify(value) ?? '' }))),
  );
  const yaml = fc.oneof(
    fc
      .integer({ min: 3, max: 12 })
      .map((levels) => ({ contentType: 'application/yaml', body: yamlBomb(levels) })),
    fc
      .constantFrom(
        '- &a [*a]',
        'a: !!js/function "function(){}"',
        'a: !!binary aGVsbG8=',
        '<<: {a: 1}',
        'a: 1\na: 2',
        '? [a, b]\n: c',
        '%YAML 9.9\n---\na: 1',
        '---\na: 1\n---\nb: 2',
        'a: "\\x',
        '\t- x',
      )
      .map((text) => ({ contentType: 'application/yaml', body: text })),
    depth.map((n) => ({ contentType: 'application/yaml', body: '['.repeat(n) + ']'.repeat(n) })),
    depth.map((n) => ({
      contentType: 'application/yaml',
      body: Array.from({ length: Math.min(n, 2000) }, (_, i) => `${' '.repeat(i)}a:`).join('\n') + ' 1',
    })),
    documents.map((value) => ({ contentType: '', body: JSON.stringify(value) ?? '' })),
  );
  return fc.oneof(
    { weight: 4, arbitrary: asJson },
    { weight: 3, arbitrary: hostile },
    ...(options.yaml ? [{ weight: 2, arbitrary: yaml }] : []),
  );
}

// ---- signatures -----------------------------------------------------------------------------

/** Ways a signed request can be wrong, and the one way it is right. */
export type Signing =
  | 'valid'
  | 'missing'
  | 'wrong-secret'
  | 'stale'
  | 'future'
  | 'other-body'
  | 'bad-timestamp'
  | 'no-event-id'
  | 'garbage';

export const signing = fc.constantFrom<Signing>(
  'valid',
  'valid',
  'valid',
  'missing',
  'wrong-secret',
  'stale',
  'future',
  'other-body',
  'bad-timestamp',
  'no-event-id',
  'garbage',
);

export function signedWith(
  how: Signing,
  secret: string,
  body: string,
  eventId: string,
): Record<string, string> {
  switch (how) {
    case 'valid':
      return signedHeaders(secret, body, eventId);
    case 'missing':
      return { 'content-type': 'application/json' };
    case 'wrong-secret':
      return signedHeaders(`${secret}-not`, body, eventId);
    case 'stale':
      return signedHeaders(secret, body, eventId, Date.now() - 3600_000);
    case 'future':
      return signedHeaders(secret, body, eventId, Date.now() + 3600_000);
    case 'other-body':
      return signedHeaders(secret, `${body} `, eventId);
    case 'bad-timestamp':
      return { ...signedHeaders(secret, body, eventId), 'x-srcnet-timestamp': '1e9' };
    case 'no-event-id': {
      const { 'x-srcnet-event-id': _dropped, ...rest } = signedHeaders(secret, body, eventId);
      return rest;
    }
    case 'garbage':
      return { ...signedHeaders(secret, body, eventId), 'x-srcnet-signature': 'sha256=zz' };
  }
}

/** A stand-in for the broker's callback endpoint: takes every callback, so that workers' outboxes drain. */
export async function callbackSink() {
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () =>
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"outcome":"applied"}'),
    );
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callbacks`,
    close: () => new Promise<void>((closed) => server.close(() => closed())),
  };
}

/** The time each property took, printed when the file ends (the CI-sized figures in docs/reliability.md). */
export function stopwatch(service: string) {
  const seconds: Record<string, number> = {};
  return {
    async time(endpoint: string, run: () => Promise<void>) {
      const started = performance.now();
      await run();
      seconds[endpoint] = Math.round(performance.now() - started) / 1000;
    },
    report() {
      console.log(`hostile ${service}: ${RUNS} inputs per endpoint, seconds`, seconds);
    },
  };
}

/**
 * IVOA requests that are valid but for one component of the wrong shape: items of `data` or
 * `storage` that are not objects, an `executable` or `compute` that is not one. Ajv skips its
 * `discriminator` keyword for a value that is not an object, so these once passed validation and
 * were a 500 in the broker; each is now a 400 naming `path`.
 */
export const SHAPE_REGRESSIONS: { contentType: string; body: string; path: string }[] = (
  [
    [{ data: [null, 'x'] }, '/data/0'],
    [{ data: ['ivo://x'] }, '/data/0'],
    [{ storage: ['x', null] }, '/storage/0'],
    [{ executable: 'docker' }, '/executable'],
    [{ executable: [] }, '/executable'],
    [{ compute: 5 }, '/compute'],
    [{ compute: null }, '/compute'],
  ] as const
).map(([change, path]) => ({
  contentType: 'application/json',
  body: JSON.stringify({
    executable: {
      kind: `${KIND}executable/docker-container.yaml`,
      image: { locations: ['ghcr.io/ivoa/hello:1.0'], digest: `sha256:${'b'.repeat(64)}` },
    },
    schedule: { requested: { duration: 'PT10M' } },
    ...change,
  }),
  path,
}));

/** Bodies every property tries first, whatever the seed: the classic attacks, one of each. */
export const CLASSIC_ATTACKS: { contentType: string; body: string | Buffer }[] = [
  ...SHAPE_REGRESSIONS.map(({ contentType, body }) => ({ contentType, body })),
  { contentType: 'application/json', body: deepJson(10_000, '{"a":') },
  { contentType: 'application/json', body: deepJson(10_000, '[') },
  { contentType: 'application/json', body: JSON.stringify({ filler: 'x'.repeat(1024 * 1024) }) },
  {
    contentType: 'application/json',
    body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
  },
  { contentType: 'application/yaml', body: yamlBomb(10) },
  { contentType: 'application/yaml', body: '['.repeat(10_000) + ']'.repeat(10_000) },
  { contentType: '', body: deepJson(10_000, '{"a":') },
];

/**
 * The property of every worker's `POST /commands`: each body (commands and garbage), signed well
 * or badly, gets an answer that is handled and says why, and a bad signature never gets through.
 * The classic attacks go first, validly signed.
 */
export function commandsAreHandled(
  url: string,
  secret: string,
  bodies: fc.Arbitrary<{ contentType: string; body: string | Buffer }>,
): Promise<void> {
  return fc.assert(
    fc.asyncProperty(bodies, signing, fc.uuid(), async (sent, how, eventId) => {
      const text = typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8');
      const headers = signedWith(how, secret, text, eventId);
      if (sent.contentType) headers['content-type'] = sent.contentType;
      const answer = await send(url, { method: 'POST', path: '/commands', headers, body: sent.body });
      expectHandled(answer, `POST /commands (${how}) ${text.slice(0, 200)}`);
      if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
    }),
    {
      ...settings,
      examples: CLASSIC_ATTACKS.map((attack) => [attack, 'valid' as const, randomUUID()]),
    },
  );
}

// ---- GraphQL ----------------------------------------------------------------------------------

/** `_entities` representations: of the entity, of no entity, without or with a bad key, not objects. */
export const representations = fc.array(
  fc.oneof(
    fc.record(
      {
        __typename: fc.constantFrom('ExecutionStep', 'OfferSet', 'Query', 'String', 'Nope', '', '_Entity'),
        id: fc.oneof(fc.uuid(), wrongValue),
      },
      { requiredKeys: [] },
    ),
    wrongValue,
  ),
  { maxLength: 5 },
);

/**
 * GraphQL documents that are hostile to any subgraph: deep selections and input values, many
 * aliases of `field` (a cheap selection on the subgraph's Query), directives and variables by the
 * thousand, bad `_entities` representations, and text that is not GraphQL.
 */
export function hostileDocuments(field: string): fc.Arbitrary<string> {
  return fc.oneof(
    depth.map((n) => `{ ${'a { '.repeat(n)} b ${'} '.repeat(n)}}`),
    depth.map(
      (n) =>
        `{ _entities(representations: [{__typename: "ExecutionStep", id: "x"}]) { ${'... on ExecutionStep { '.repeat(n)} id ${'} '.repeat(n)}} }`,
    ),
    depth.map((n) => `query { ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`),
    depth.map((n) => `{ __typename ${'@include(if: true) '.repeat(n)} }`),
    depth.map(
      (n) => `query (${Array.from({ length: n }, (_, i) => `$v${i}: Int`).join(', ')}) { __typename }`,
    ),
    depth.map((n) => `{ ${'__typename '.repeat(n)} }`),
    depth.map((n) => `{ _entities(representations: ${'['.repeat(n)}1${']'.repeat(n)}) { __typename } }`),
    fc.constantFrom(
      '{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }',
      '{ _service { sdl } }',
      '{ _entities(representations: [{__typename: "ExecutionStep", id: {}}]) { __typename } }',
      '{ _entities(representations: [{__typename: "Nope"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "ExecutionStep"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "ExecutionStep", id: 5}, 7, null]) { __typename } }',
      '{ _entities(representations: [{__typename: "String", id: "x"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "Query", id: "x"}]) { __typename } }',
      '{ _entities(representations: [{__typename: "_Entity", id: "x"}]) { __typename } }',
      '{ _entities(representations: []) { __typename } }',
      'query A { __typename } query A { __typename }',
      'fragment F on Query { ...F } { ...F }',
      'subscription { executionStepChanged { id } }',
      'mutation { nope }',
      '',
      '{',
    ),
    fc.string({ maxLength: 200 }),
  );
}

/**
 * A subgraph's `/graphql` under hostile input, POST and GET: `operations` are its own operations
 * with generated variables, `field` a cheap selection to alias. No 5xx, and every error has a
 * message that is not the mask of a crash.
 */
export async function assertGraphQL(
  baseUrl: string,
  options: {
    operations: fc.Arbitrary<{ query: string; variables: unknown }>;
    field: string;
    callers: fc.Arbitrary<Record<string, string>>;
  },
) {
  const documents = hostileDocuments(options.field);
  const envelope = fc.oneof(
    { weight: 4, arbitrary: options.operations.map((operation) => JSON.stringify(operation)) },
    { weight: 3, arbitrary: documents.map((query) => JSON.stringify({ query })) },
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
  const post = fc.tuple(body(fc.constant(null)), envelope, fc.boolean()).map(([raw, text, useRaw]) => ({
    method: 'POST',
    path: '/graphql',
    contentType: useRaw ? raw.contentType : 'application/json',
    body: useRaw ? raw.body : text,
  }));
  const get = fc
    .tuple(
      fc.oneof(
        documents,
        options.operations.map((o) => o.query),
      ),
      fc.option(fc.string({ maxLength: 50 })),
    )
    .map(([query, variables]) => {
      const params = new URLSearchParams({ query: query.slice(0, 6000) });
      if (variables !== null) params.set('variables', variables);
      return { method: 'GET', path: `/graphql?${params}`, contentType: '', body: undefined };
    });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof({ weight: 3, arbitrary: post }, { weight: 1, arbitrary: get }),
      options.callers,
      async (request, caller) => {
        const answer = await send(baseUrl, {
          method: request.method,
          path: request.path,
          headers: {
            accept: 'application/graphql-response+json, application/json',
            ...(request.contentType ? { 'content-type': request.contentType } : {}),
            ...caller,
          },
          ...(request.body === undefined ? {} : { body: request.body }),
        });
        const context = `${request.method} ${request.path.slice(0, 200)} ${String(request.body ?? '').slice(0, 300)}`;
        expectHandled(answer, context);
        const errors = (answer.body as { errors?: { message?: string }[] } | undefined)?.errors ?? [];
        for (const error of errors) {
          expect(error.message?.trim(), context).toBeTruthy();
          // "Unexpected error." is what a masked crash looks like: a bug, not an answer.
          expect(error.message, context).not.toBe('Unexpected error.');
        }
      },
    ),
    {
      ...settings,
      examples: CLASSIC_ATTACKS.map((attack) => [
        { method: 'POST', path: '/graphql', contentType: attack.contentType, body: attack.body },
        {},
      ]),
    },
  );
}

// ---- replayed commands ------------------------------------------------------------------------

/** Runs of the replay properties: each run makes real backend work, so fewer than `RUNS`. */
export const REPLAY_RUNS = Math.max(10, RUNS / 20);

/**
 * What follows a signed command: the same request again (`same`), the same body signed afresh as
 * a resending broker would (`resigned`), the same request once the worker has finished the
 * command (`later`), or another command in between (`other`, which each worker picks).
 */
export type Replay = 'same' | 'resigned' | 'later' | 'other';

export const replays = fc.record({
  /** Whether the first copy races the original. */
  concurrent: fc.boolean(),
  then: fc.array(fc.constantFrom<Replay>('same', 'resigned', 'later', 'other'), {
    minLength: 1,
    maxLength: 5,
  }),
});

/** Polls `probe` until it gives a value. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A valid command signed as the broker signs it. */
export function signedCommand(secret: string, command: { commandId: string }): HostileRequest {
  const text = JSON.stringify(command);
  return {
    method: 'POST',
    path: '/commands',
    headers: signedHeaders(secret, text, randomUUID()),
    body: text,
  };
}

/**
 * Sends `command`, then replays it as `plan` says; every copy must be answered 202 for that
 * command. `other` sends another command; `done` says whether the worker finished one.
 */
export async function replayCommand(options: {
  url: string;
  secret: string;
  command: { commandId: string };
  plan: { concurrent: boolean; then: readonly Replay[] };
  other(): Promise<void>;
  done(commandId: string): Promise<boolean>;
}) {
  const { url, secret, command } = options;
  const original = signedCommand(secret, command);
  const accepted = (answer: Answer, how: string) => {
    expectHandled(answer, `${how} ${String(original.body).slice(0, 200)}`);
    expect(answer.status, `${how}: ${answer.text}`).toBe(202);
    expect((answer.body as { accepted?: unknown }).accepted, how).toBe(command.commandId);
  };
  const first = options.plan.concurrent
    ? await Promise.all([send(url, original), send(url, original)])
    : [await send(url, original)];
  first.forEach((answer) => accepted(answer, 'original'));
  for (const step of options.plan.then) {
    if (step === 'other') await options.other();
    else if (step === 'resigned') accepted(await send(url, signedCommand(secret, command)), step);
    else {
      if (step === 'later')
        await eventually(`command ${command.commandId} done`, async () =>
          (await options.done(command.commandId)) ? true : undefined,
        );
      accepted(await send(url, original), step);
    }
  }
}
