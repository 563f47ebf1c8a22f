/**
 * The prepareData worker under hostile input, over real HTTP: the broker's commands
 * (`POST /commands`), prepareData's notifications (`POST /notifications/preparedata`) and the
 * subgraph (`/graphql`), each with `RUNS` generated requests; and replayed commands, which must
 * submit one staging job only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '@srcnet/service-kit';
import {
  startPrepareDataEmulator,
  type PrepareDataEmulator,
} from '../../subgraphs/preparedata/emulator/index.ts';
import { loadConfig } from '../../subgraphs/preparedata/src/config.ts';
import {
  startPrepareDataWorker,
  type RunningPrepareDataWorker,
} from '../../subgraphs/preparedata/src/worker.ts';
import { WORLD, waitFor } from '../../subgraphs/preparedata/test/stack.ts';
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
  type Answer,
} from './support.ts';

const SECRET = 'hostile-callback-secret';
const NOTIFICATION_SECRET = 'hostile-preparedata-callback-secret';
const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
let dir: string;
let emulator: PrepareDataEmulator;
let worker: RunningPrepareDataWorker;
let sink: Awaited<ReturnType<typeof callbackSink>>;
let url: string;
const clock = stopwatch('prepareData worker');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hostile-preparedata-'));
  sink = await callbackSink();
  emulator = await startPrepareDataEmulator(WORLD);
  worker = await startPrepareDataWorker(
    loadConfig({
      PORT: '0',
      SQLITE_PATH: join(dir, 'worker.sqlite'),
      PREPAREDATA_URL: emulator.url,
      PREPAREDATA_STORAGE_AREA: 'test-area',
      CALLBACK_SECRET: SECRET,
      PREPAREDATA_CALLBACK_SECRET: NOTIFICATION_SECRET,
    }),
    { logger: pino({ level: 'silent' }) },
  );
  url = worker.url;
});
afterAll(async () => {
  clock.report();
  await worker?.close();
  await emulator?.close();
  await sink?.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await expectHealthy(url);
});

/** A data component's prepare: one small DID staged into the test area. */
function command(action = 'prepare', stepId = randomUUID(), uuid = randomUUID()) {
  return {
    commandId: `${stepId}:${uuid}:${action}`,
    action,
    stepId,
    owner: 'alice',
    component: { role: 'data', uuid, kind: `${KIND}data/skao-data-resource.yaml` },
    step: {
      kind: `${KIND}session/scheduled-execution-session.yaml`,
      schedule: {
        available: { start: `${new Date().toISOString().slice(0, 19)}Z/PT0S`, duration: 'PT1H' },
        releasing: { duration: 'PT10S' },
      },
      data: [
        {
          kind: `${KIND}data/skao-data-resource.yaml`,
          meta: { uuid, name: 'small' },
          skao: { namespace: 'testing', objectname: 'small' },
        },
      ],
    },
    callbackUrl: sink.url,
  };
}

const COMMAND_PATHS = [
  ['commandId'],
  ['action'],
  ['stepId'],
  ['component', 'role'],
  ['component', 'uuid'],
  ['component', 'kind'],
  ['step', 'schedule', 'available', 'start'],
  ['step', 'schedule', 'available', 'duration'],
  ['step', 'schedule', 'releasing', 'duration'],
  ['step', 'data'],
  ['step', 'data', '0', 'meta', 'uuid'],
  ['step', 'data', '0', 'skao'],
  ['step', 'data', '0', 'skao', 'namespace'],
  ['step', 'data', '0', 'kind'],
  ['callbackUrl'],
] as const;

/** prepareData's 503 for a job it has not recorded yet is the contract: it makes prepareData resend. */
const notYetKnown = (answer: Answer) => answer.status === 503 && /job .* is not known yet/.test(answer.text);

/** Steps of alice's with staged data, for the subgraph's mutation. */
const stagedSteps: string[] = [];

describe('the prepareData worker', () => {
  it(
    'a replayed command submits its staging job once, however and whenever it comes again',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const submits = () => emulator.stats().requests.byOperation.submit ?? 0;
      const done = async (commandId: string) =>
        (
          await worker.db
            .selectFrom('commands')
            .select('done')
            .where('command_id', '=', commandId)
            .executeTakeFirst()
        )?.done === 1;
      await clock.time('POST /commands replayed', () =>
        fc.assert(
          fc.asyncProperty(replays, async (plan) => {
            const before = submits();
            const main = command();
            const sent = [main.commandId];
            let prepares = 1;
            let others = 0;
            const other = async (next: ReturnType<typeof command>) => {
              sent.push(next.commandId);
              expect((await send(url, signedCommand(SECRET, next))).status).toBe(202);
            };
            await replayCommand({
              url,
              secret: SECRET,
              command: main,
              plan,
              done,
              async other() {
                // Another step's prepare, or the release of this one: neither may submit this job again.
                if (others++ % 2 === 1) return other(command('release', main.stepId, main.component.uuid));
                prepares++;
                return other(command());
              },
            });
            for (const commandId of sent)
              await eventually(`command ${commandId} done`, async () =>
                (await done(commandId)) ? true : undefined,
              );
            expect(submits() - before, JSON.stringify(plan)).toBe(prepares);
            const { job_id: jobId } = await worker.db
              .selectFrom('components')
              .select('job_id')
              .where('component_uuid', '=', main.component.uuid)
              .executeTakeFirstOrThrow();
            expect(emulator.stats().requests.byJob[jobId!]?.submit).toBe(1);
            stagedSteps.push(main.stepId);
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
      const commands = fc.oneof(
        fc.constant(null).chain(() => mutated(command(), COMMAND_PATHS)),
        fc
          .record({ start: badIso, duration: badIso, releasing: badIso })
          .map(({ start, duration, releasing }) => {
            const made = command();
            made.step.schedule = { available: { start, duration }, releasing: { duration: releasing } };
            return made;
          }),
      );
      await clock.time('POST /commands', () => commandsAreHandled(url, SECRET, body(commands)));
    },
  );

  it(
    'POST /notifications/preparedata answers every notification with a 2xx or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      // A job the worker follows, so that well-formed notifications reach the stager.
      const staged = command();
      const text = JSON.stringify(staged);
      const taken = await send(url, {
        method: 'POST',
        path: '/commands',
        headers: signedHeaders(SECRET, text, staged.commandId),
        body: text,
      });
      expect(taken.status, taken.text).toBe(202);
      const jobId = await waitFor('the job id', async () => {
        const row = await worker.db
          .selectFrom('components')
          .select('job_id')
          .where('component_uuid', '=', staged.component.uuid)
          .executeTakeFirst();
        return row?.job_id ?? undefined;
      });
      const notification = {
        type: 'progress',
        event_id: 'e',
        job_id: jobId,
        sequence: 1,
        state: 'STAGING',
        bytes_done: 10,
        bytes_total: 1000,
        time: new Date().toISOString(),
        message: null,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
      };
      const notifications = fc.oneof(
        mutated(notification, [
          ['type'],
          ['job_id'],
          ['sequence'],
          ['state'],
          ['bytes_done'],
          ['bytes_total'],
          ['time'],
          ['message'],
          ['expires_at'],
        ]),
        fc
          .record({
            type: fc.constantFrom('state', 'progress'),
            job_id: fc.oneof(fc.constant(jobId), fc.uuid()),
            sequence: fc.oneof(fc.nat(), fc.constantFrom(2 ** 53, 1e300)),
            state: fc.constantFrom(
              'QUEUED',
              'STAGING',
              'COMPLETED',
              'FAILED',
              'EXPIRED',
              'RELEASED',
              'staging',
            ),
            bytes_done: fc.oneof(fc.nat(), fc.constant(-1)),
            time: fc.oneof(
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
              badIso,
            ),
            expires_at: badIso,
          })
          .map((changes) => ({ ...notification, ...changes })),
      );
      await clock.time('POST /notifications/preparedata', () =>
        fc.assert(
          fc.asyncProperty(body(notifications), signing, fc.uuid(), async (sent, how, eventId) => {
            let text = typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8');
            // The body's event id is the header's, so that a valid signature gets past that check.
            text = text.replace('"event_id":"e"', `"event_id":"${eventId}"`);
            const payload = typeof sent.body === 'string' ? text : sent.body;
            const headers = signedWith(how, NOTIFICATION_SECRET, text, eventId);
            if (sent.contentType) headers['content-type'] = sent.contentType;
            const answer = await send(url, {
              method: 'POST',
              path: '/notifications/preparedata',
              headers,
              body: payload,
            });
            expectHandled(
              answer,
              `POST /notifications/preparedata (${how}) ${text.slice(0, 200)}`,
              notYetKnown,
            );
            if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            // Signed but malformed is the body's fault (400; 413, 415 for its size and type), never 401.
            else if (answer.status >= 400 && answer.status < 500)
              expect([400, 413, 415], answer.text).toContain(answer.status);
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
      const operations = fc.oneof(
        fc.record({
          query: fc.constant(
            'query ($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id dataStaging { resourceUuid state bytesDone bytesTotal fraction rate estimatedSecondsLeft expiresAt updatedAt } } } }',
          ),
          variables: fc.oneof(
            representations.map((r) => ({ r })),
            fc
              .constantFrom(randomUUID(), ...stagedSteps)
              .map((id) => ({ r: [{ __typename: 'ExecutionStep', id }] })),
            wrongValue.map((r) => ({ r })),
            fc.jsonValue({ maxDepth: 3 }),
          ),
        }),
        fc.record({
          query: fc.constant(
            'mutation ($r: ID!, $s: Int!) { extendDataLifetime(stepId: $r, seconds: $s) { state expiresAt lifetimeSeconds } }',
          ),
          variables: fc.oneof(
            fc.record({
              r: fc.oneof(fc.constantFrom(randomUUID(), ...stagedSteps), fc.uuid(), wrongValue),
              s: fc.oneof(fc.integer({ min: -10, max: 3600 }), wrongValue),
            }),
            fc.jsonValue({ maxDepth: 3 }),
          ),
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
      await clock.time('/graphql', () => assertGraphQL(url, { operations, field: '__typename', callers }));
    },
  );
});
