/**
 * The Skaha worker under hostile input, over real HTTP: the broker's commands (`POST /commands`),
 * Skaha's session notifications (`POST /skaha-callbacks`) and the subgraph (`/graphql`), each with
 * `RUNS` generated requests; and replayed commands, which must start one session only.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HELLO, skahaStack } from '../../subgraphs/skaha/test/stack.ts';
import {
  commandsAreHandled,
  CLASSIC_ATTACKS,
  PROPERTY_TIMEOUT,
  REPLAY_RUNS,
  assertGraphQL,
  badIso,
  body,
  callbackSink,
  eventually,
  expectHandled,
  expectHealthy,
  mutated,
  replayCommand,
  replays,
  representations,
  send,
  settings,
  signedCommand,
  signedWith,
  signing,
  stopwatch,
  wrongValue,
} from './support.ts';

const SECRET = 'hostile-callback-secret';
const SKAHA_SECRET = 'hostile-skaha-callback-secret';
const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
let stack: Awaited<ReturnType<typeof skahaStack>>;
let sink: Awaited<ReturnType<typeof callbackSink>>;
let url: string;
const clock = stopwatch('skaha worker');

beforeAll(async () => {
  sink = await callbackSink();
  stack = await skahaStack({ CALLBACK_SECRET: SECRET, SKAHA_CALLBACK_SECRET: SKAHA_SECRET });
  url = stack.worker.url;
});
afterAll(async () => {
  clock.report();
  await stack?.stop();
  await sink?.close();
});
afterEach(async () => {
  await expectHealthy(url);
});

/** A notebook's executable: the command the worker answers at once, with no call to Skaha. */
function command() {
  const stepId = randomUUID();
  const uuid = randomUUID();
  return {
    commandId: `${stepId}:${uuid}:prepare`,
    action: 'prepare',
    stepId,
    owner: 'alice',
    component: { role: 'executable', uuid, kind: `${KIND}executable/jupyter-notebook.yaml` },
    step: {
      kind: `${KIND}session/scheduled-execution-session.yaml`,
      executable: {
        kind: `${KIND}executable/jupyter-notebook.yaml`,
        meta: { uuid },
        location: 'https://example.org/hello.ipynb',
      },
      compute: {
        kind: `${KIND}compute/simple-compute-resource.yaml`,
        meta: { uuid: randomUUID() },
        cores: { min: 1, max: 1 },
        memory: { min: 1, max: 1 },
      },
    },
    callbackUrl: sink.url,
  };
}

const COMMAND_PATHS = [
  ['commandId'],
  ['action'],
  ['stepId'],
  ['owner'],
  ['component'],
  ['component', 'role'],
  ['component', 'uuid'],
  ['component', 'kind'],
  ['step'],
  ['step', 'kind'],
  ['step', 'executable'],
  ['step', 'executable', 'kind'],
  ['step', 'compute', 'cores', 'min'],
  ['step', 'schedule'],
  ['step', 'schedule', 'available', 'start'],
  ['callbackUrl'],
] as const;

/** A compute component's command: a prepare starts a headless Skaha session, a release ends it. */
function computeCommand(stepId = randomUUID(), uuid = randomUUID(), action = 'prepare') {
  return {
    commandId: `${stepId}:${uuid}:${action}`,
    action,
    stepId,
    owner: 'alice',
    component: { role: 'compute', uuid, kind: `${KIND}compute/simple-compute-resource.yaml` },
    step: {
      kind: `${KIND}session/scheduled-execution-session.yaml`,
      executable: {
        kind: `${KIND}executable/docker-container.yaml`,
        meta: { uuid: randomUUID() },
        image: { locations: [HELLO], digest: `sha256:${'c'.repeat(64)}` },
      },
      compute: {
        kind: `${KIND}compute/simple-compute-resource.yaml`,
        meta: { uuid },
        cores: { min: 1, max: 1 },
        memory: { min: 1, max: 1 },
      },
    },
    callbackUrl: sink.url,
  };
}

describe('the Skaha worker', () => {
  it(
    'a replayed command starts its session once, however and whenever it comes again',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const creates = () => stack.skaha.stats().requests.byOperation.createSession ?? 0;
      const done = async (commandId: string) =>
        (
          await stack.worker.db
            .selectFrom('commands')
            .select('done')
            .where('command_id', '=', commandId)
            .executeTakeFirst()
        )?.done === 1;
      await clock.time('POST /commands replayed', () =>
        fc.assert(
          fc.asyncProperty(replays, async (plan) => {
            const before = creates();
            const main = computeCommand();
            const prepared = [main];
            const released = new Set<string>();
            const sent = [main.commandId];
            const release = async (command: ReturnType<typeof computeCommand>) => {
              const ending = computeCommand(command.stepId, command.component.uuid, 'release');
              released.add(command.component.uuid);
              sent.push(ending.commandId);
              expect((await send(url, signedCommand(SECRET, ending))).status).toBe(202);
            };
            let others = 0;
            await replayCommand({
              url,
              secret: SECRET,
              command: main,
              plan,
              done,
              async other() {
                // Another step's prepare, or the end of this one: neither may start this session again.
                if (others++ % 2 === 1 && !released.has(main.component.uuid)) return release(main);
                const elsewhere = computeCommand();
                prepared.push(elsewhere);
                sent.push(elsewhere.commandId);
                expect((await send(url, signedCommand(SECRET, elsewhere))).status).toBe(202);
              },
            });
            // Every session ends, so that the emulated cluster never fills up.
            for (const command of prepared) if (!released.has(command.component.uuid)) await release(command);
            for (const commandId of sent)
              await eventually(`command ${commandId} done`, async () =>
                (await done(commandId)) ? true : undefined,
              );
            expect(creates() - before, JSON.stringify(plan)).toBe(prepared.length);
            const row = await stack.worker.db
              .selectFrom('sessions')
              .select('session_id')
              .where('component_uuid', '=', main.component.uuid)
              .executeTakeFirstOrThrow();
            expect(stack.skaha.stats().requests.bySession[row.session_id!]?.createSession).toBe(1);
          }),
          { ...settings, numRuns: REPLAY_RUNS },
        ),
      );
    },
  );

  it(
    'POST /commands answers every command with a 202 or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('POST /commands', () =>
        commandsAreHandled(
          url,
          SECRET,
          // A fresh command each run (mutated from it), so that valid ones are new work, not repeats.
          fc.constant(null).chain(() => body(mutated(command(), COMMAND_PATHS))),
        ),
      );
    },
  );

  it(
    'POST /skaha-callbacks answers every notification with a 2xx or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const notification = {
        eventId: 'e',
        type: 'session.status',
        instance: 'skaha-1',
        sessionId: 'abc123',
        name: `step-${randomUUID()}`,
        userid: 'dev',
        status: 'Running',
        previousStatus: 'Pending',
        time: new Date().toISOString(),
        sequence: 1,
      };
      const notifications = fc.oneof(
        mutated(notification, [
          ['type'],
          ['instance'],
          ['sessionId'],
          ['name'],
          ['status'],
          ['previousStatus'],
          ['time'],
          ['sequence'],
          ['message'],
          ['session'],
          ['session', 'status'],
          ['session', 'id'],
          ['session', 'startTime'],
        ]),
        fc
          .record({ time: badIso, sequence: fc.oneof(fc.integer(), fc.constantFrom(2 ** 53, 1e300, 0.5)) })
          .map((changes) => ({ ...notification, ...changes })),
      );
      await clock.time('POST /skaha-callbacks', () =>
        fc.assert(
          fc.asyncProperty(body(notifications), signing, fc.uuid(), async (sent, how, eventId) => {
            let text = typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8');
            // The event id of the body is the header's, so that a valid signature gets past that check.
            text = text.replace('"eventId":"e"', `"eventId":"${eventId}"`);
            const payload = typeof sent.body === 'string' ? text : sent.body;
            const headers = signedWith(how, SKAHA_SECRET, text, eventId);
            if (sent.contentType) headers['content-type'] = sent.contentType;
            const answer = await send(url, {
              method: 'POST',
              path: '/skaha-callbacks',
              headers,
              body: payload,
            });
            expectHandled(answer, `POST /skaha-callbacks (${how}) ${text.slice(0, 200)}`);
            if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            // Signed but malformed is the body's fault (400; 413, 415 for its size and type), never 401.
            else if (answer.status >= 400) expect([400, 413, 415], answer.text).toContain(answer.status);
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
    '/graphql answers every operation without a 5xx, and every error has a message',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const id = fc.oneof(fc.string({ maxLength: 12 }), fc.uuid(), wrongValue);
      const operations = fc.oneof(
        fc.record({
          query: fc.constant(
            'query ($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id skahaSession { id status compute { cores { min } } } } } }',
          ),
          variables: fc.oneof(
            representations.map((r) => ({ r })),
            wrongValue.map((r) => ({ r })),
            fc.jsonValue({ maxDepth: 3 }),
          ),
        }),
        fc.record({
          query: fc.constant('mutation ($r: ID!) { renewSkahaSession(id: $r) { id expiryTime userid } }'),
          variables: fc.oneof(
            id.map((r) => ({ r })),
            fc.jsonValue({ maxDepth: 3 }),
          ),
        }),
        fc.constant({
          query:
            '{ skahaSessions { id session { id status compute { memory { max } } } asExecutionStep executionStep { id } } skahaContext { gpus cores { options } } }',
          variables: null,
        }),
      );
      const callers = fc.constantFrom<Record<string, string>>(
        { authorization: 'Bearer dev:alice' },
        { authorization: 'Bearer dev:bob' },
        {},
        { authorization: 'Bearer' },
        { authorization: `Bearer dev:${'u'.repeat(5000)}` },
        { 'x-srcnet-identity': 'e30', 'x-srcnet-identity-signature': 'x' },
      );
      await clock.time('/graphql', () =>
        assertGraphQL(url, { operations, field: 'skahaContext { gpus }', callers }),
      );
    },
  );
});
