/**
 * The Skaha worker under hostile input, over real HTTP: the broker's commands (`POST /commands`)
 * and Skaha's session notifications (`POST /skaha-callbacks`), each with `RUNS` generated requests.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { skahaStack } from '../../subgraphs/skaha/test/stack.ts';
import {
  CLASSIC_ATTACKS,
  PROPERTY_TIMEOUT,
  badIso,
  body,
  callbackSink,
  expectHandled,
  expectHealthy,
  mutated,
  send,
  settings,
  signedWith,
  signing,
  stopwatch,
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

describe('the Skaha worker', () => {
  it(
    'POST /commands answers every command with a 202 or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      await clock.time('POST /commands', () =>
        fc.assert(
          fc.asyncProperty(
            // A fresh command each run (mutated from it), so that valid ones are new work, not repeats.
            fc.constant(null).chain(() => body(mutated(command(), COMMAND_PATHS))),
            signing,
            fc.uuid(),
            async (sent, how, eventId) => {
              const text = typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8');
              const headers = signedWith(how, SECRET, text, eventId);
              if (sent.contentType) headers['content-type'] = sent.contentType;
              const answer = await send(url, { method: 'POST', path: '/commands', headers, body: sent.body });
              expectHandled(answer, `POST /commands (${how}) ${text.slice(0, 200)}`);
              if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            },
          ),
          {
            ...settings,
            examples: CLASSIC_ATTACKS.map((attack) => [attack, 'valid' as const, randomUUID()]),
          },
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
          }),
          {
            ...settings,
            examples: CLASSIC_ATTACKS.map((attack) => [attack, 'valid' as const, randomUUID()]),
          },
        ),
      );
    },
  );
});
