/**
 * The Harbor worker under hostile input, over real HTTP: the broker's commands (`POST /commands`),
 * Harbor's webhooks (`POST /webhooks/harbor`), the broker's estimates (`POST /estimates`), the
 * Skaha worker's `GET /images/local` and the subgraph (`/graphql`), each with `RUNS` generated
 * requests; and replayed commands, which must copy an image once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signIdentity } from '@srcnet/service-kit';
import { startHarborEmulator, type HarborEmulator } from '../../subgraphs/harbor/emulator/index.ts';
import { loadConfig } from '../../subgraphs/harbor/src/config.ts';
import { startHarborWorker, type RunningHarborWorker } from '../../subgraphs/harbor/src/worker.ts';
import {
  commandsAreHandled,
  CLASSIC_ATTACKS,
  PROPERTY_TIMEOUT,
  REPLAY_RUNS,
  assertGraphQL,
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
const WEBHOOK_SECRET = 'hostile-harbor-webhook-secret';
const GATEWAY_SECRET = 'hostile-gateway-secret';
const DOCKER =
  'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml';
let dir: string;
let source: HarborEmulator;
let harbor: HarborEmulator;
let worker: RunningHarborWorker;
let sink: Awaited<ReturnType<typeof callbackSink>>;
let url: string;
let image: { location: string; digest: string };
const clock = stopwatch('Harbor worker');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hostile-harbor-'));
  sink = await callbackSink();
  source = await startHarborEmulator({ projects: [{ name: 'ivoa', public: true }] });
  harbor = await startHarborEmulator({
    timing: { timeScale: 0.01, jitter: 0 },
    projects: [{ name: 'skaha' }],
  });
  const sourceHost = new URL(source.url).host;
  image = {
    location: `${sourceHost}/ivoa/webtop:1.0`,
    digest: source.addLocalImage({ image: 'ivoa/webtop:1.0', size: 1024 * 1024, layers: 2 }).digest,
  };
  worker = await startHarborWorker(
    loadConfig({
      PORT: '0',
      HARBOR_SQLITE_PATH: join(dir, 'harbor.sqlite'),
      HARBOR_URL: harbor.url,
      // Every registry the inputs name is one of the emulators: no lookup leaves the machine.
      HARBOR_UPSTREAM_URLS: `${sourceHost}=${source.url}`,
      CALLBACK_SECRET: SECRET,
      HARBOR_WEBHOOK_SECRET: WEBHOOK_SECRET,
      AUTH_MODE: 'jwt',
      GATEWAY_SECRET,
    }),
    { logger: pino({ level: 'silent' }) },
  );
  await worker.ready;
  url = worker.url;
});
afterAll(async () => {
  clock.report();
  await worker?.close();
  await harbor?.close();
  await source?.close();
  await sink?.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await expectHealthy(url);
});

function command(
  copied = image,
  action = 'prepare',
  stepId: string = randomUUID(),
  uuid: string = randomUUID(),
) {
  return {
    commandId: `${stepId}:${uuid}:${action}`,
    action,
    stepId,
    owner: 'alice',
    component: { role: 'executable', uuid, kind: DOCKER },
    step: {
      kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/scheduled-execution-session.yaml',
      executable: {
        kind: DOCKER,
        meta: { uuid },
        image: { locations: [copied.location], digest: copied.digest },
      },
    },
    callbackUrl: sink.url,
  };
}

/** Image references on the emulated registries only, with hostile repositories, tags and digests. */
const references = () =>
  fc.oneof(
    fc.constant(image.location),
    fc.constantFrom(
      `${new URL(source.url).host}/ivoa/webtop@sha256:${'0'.repeat(64)}`,
      `${new URL(source.url).host}/ivoa/webtop@sha256:zz`,
      `${new URL(source.url).host}/IVOA/WEBTOP:1.0`,
      `${new URL(source.url).host}/ivoa/webtop:${'t'.repeat(200)}`,
      `${new URL(source.url).host}/../../etc/passwd:1`,
      `${new URL(source.url).host}/ivoa/webtop:1.0:2.0`,
      `${new URL(harbor.url).host}/skaha/nope:1`,
      `${new URL(source.url).host}/`,
      `${new URL(source.url).host}/ivoa/%00:1`,
      `${new URL(source.url).host}/ivoa/webtop:`,
      `${new URL(source.url).host}/${'a/'.repeat(500)}x:1`,
    ),
    fc.stringMatching(/^[a-z0-9._/-]{1,40}$/).map((path) => `${new URL(source.url).host}/${path}`),
  );

/** An image only the source registry has, so that preparing it makes a copy. */
let images = 0;
function freshImage() {
  const name = `ivoa/replayed-${++images}:1.0`;
  return {
    location: `${new URL(source.url).host}/${name}`,
    digest: source.addLocalImage({ image: name, size: 64 * 1024, layers: 1 }).digest,
  };
}

describe('the Harbor worker', () => {
  it(
    'a replayed command copies its image once, however and whenever it comes again',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      /** Copies Harbor made: replication executions and proxy-cache pulls. */
      const copies = () => {
        const { replication, proxyCache } = harbor.stats();
        return Object.values(replication.executions).reduce((sum, n) => sum + (n ?? 0), 0) + proxyCache.pulls;
      };
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
            const before = copies();
            const main = command(freshImage());
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
                // Another step's image, or the release of this one: neither may copy this image again.
                if (others++ % 2 === 1)
                  return other(command(image, 'release', main.stepId, main.component.uuid));
                prepares++;
                return other(command(freshImage()));
              },
            });
            for (const commandId of sent)
              await eventually(`command ${commandId} done`, async () =>
                (await done(commandId)) ? true : undefined,
              );
            expect(copies() - before, JSON.stringify(plan)).toBe(prepares);
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
        fc
          .constant(null)
          .chain(() =>
            mutated(command(), [
              ['commandId'],
              ['action'],
              ['component', 'role'],
              ['component', 'kind'],
              ['step', 'executable'],
              ['step', 'executable', 'kind'],
              ['step', 'executable', 'image'],
              ['step', 'executable', 'image', 'locations'],
              ['step', 'executable', 'image', 'digest'],
              ['callbackUrl'],
            ]),
          ),
        fc
          .tuple(fc.array(references(), { maxLength: 3 }), fc.option(fc.string({ maxLength: 80 })))
          .map(([locations, digest]) => {
            const made = command();
            made.step.executable.image = { locations, digest: digest ?? image.digest };
            return made;
          }),
      );
      await clock.time('POST /commands', () => commandsAreHandled(url, SECRET, body(commands)));
    },
  );

  it(
    'POST /webhooks/harbor answers every delivery with a 2xx or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const replication = {
        type: 'REPLICATION',
        occur_at: Math.floor(Date.now() / 1000),
        operator: 'admin',
        event_data: { replication: { execution_id: 1, job_status: 'Success', task_id: 1 } },
      };
      const pushed = {
        specversion: '1.0',
        type: 'harbor.artifact.pushed',
        time: new Date().toISOString(),
        data: {
          resources: [{ digest: image.digest, tag: '1.0', resource_url: image.location }],
          repository: {
            name: 'webtop',
            namespace: 'skaha',
            repo_full_name: 'skaha/webtop',
            repo_type: 'private',
          },
        },
      };
      const deliveries = fc.oneof(
        mutated(replication, [
          ['type'],
          ['occur_at'],
          ['operator'],
          ['event_data'],
          ['event_data', 'replication'],
          ['event_data', 'replication', 'execution_id'],
          ['event_data', 'replication', 'job_status'],
          ['event_data', 'resources'],
        ]),
        mutated(pushed, [
          ['specversion'],
          ['type'],
          ['time'],
          ['data'],
          ['data', 'resources'],
          ['data', 'resources', '0', 'digest'],
          ['data', 'repository'],
          ['data', 'repository', 'repo_full_name'],
        ]),
      );
      const authorization = fc.constantFrom(
        `Bearer ${WEBHOOK_SECRET}`,
        `Bearer ${WEBHOOK_SECRET}`,
        '',
        `Bearer ${WEBHOOK_SECRET}x`,
        `bearer ${WEBHOOK_SECRET}`,
        'Basic YWRtaW46SGFyYm9yMTIzNDU=',
        `Bearer ${'é'.repeat(WEBHOOK_SECRET.length)}`,
      );
      await clock.time('POST /webhooks/harbor', () =>
        fc.assert(
          fc.asyncProperty(body(deliveries), authorization, async (sent, auth) => {
            const headers: Record<string, string> = auth ? { authorization: auth } : {};
            if (sent.contentType) headers['content-type'] = sent.contentType;
            const answer = await send(url, {
              method: 'POST',
              path: '/webhooks/harbor',
              headers,
              body: sent.body,
            });
            expectHandled(
              answer,
              `POST /webhooks/harbor (${auth.slice(0, 12)}) ${String(sent.body).slice(0, 200)}`,
            );
            if (auth !== `Bearer ${WEBHOOK_SECRET}`)
              expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            // Authorized but malformed is the body's fault (400; 413, 415 for its size and type), never 401.
            else if (answer.status >= 400) expect([400, 413, 415], answer.text).toContain(answer.status);
          }),
          { ...settings, examples: CLASSIC_ATTACKS.map((attack) => [attack, `Bearer ${WEBHOOK_SECRET}`]) },
        ),
      );
    },
  );

  it(
    'POST /estimates answers every image with a 200, a 422 or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const estimates = fc.oneof(
        fc
          .record({
            locations: fc.array(references(), { maxLength: 3 }),
            digest: fc.option(
              // Strings in a digest's place once reached Harbor as an artifact reference: a 500.
              fc.oneof(
                fc.string({ maxLength: 80 }),
                fc.constantFrom('sha256:zz', `sha256:${'0'.repeat(64)}/x`),
              ),
              { nil: undefined },
            ),
          })
          .map((spec) => ({ image: spec })),
        mutated({ image: { locations: [image.location], digest: image.digest } }, [
          ['image'],
          ['image', 'locations'],
          ['image', 'locations', '0'],
          ['image', 'digest'],
        ]).filter((spec) => {
          // Strings the generator puts in place of a location would name real registries: keep to ours.
          const locations = (spec as { image?: { locations?: unknown } }).image?.locations;
          return (
            !Array.isArray(locations) || locations.every((l) => typeof l !== 'string' || l === image.location)
          );
        }),
        wrongValue,
      );
      await clock.time('POST /estimates', () =>
        fc.assert(
          fc.asyncProperty(body(estimates), signing, fc.uuid(), async (sent, how, eventId) => {
            const text = typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8');
            const headers = signedWith(how, SECRET, text, eventId);
            if (sent.contentType) headers['content-type'] = sent.contentType;
            const answer = await send(url, { method: 'POST', path: '/estimates', headers, body: sent.body });
            expectHandled(answer, `POST /estimates (${how}) ${text.slice(0, 200)}`);
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
    'GET /images/local answers every step id with a 200, 404, 409 or a 4xx that says why',
    { timeout: PROPERTY_TIMEOUT },
    async () => {
      const stepIds = fc.oneof(
        fc.uuid(),
        fc.string({ maxLength: 40 }),
        fc.constantFrom('', '%', '%E0%A4%A', '..%2F..', '[]', 'a'.repeat(5000)),
      );
      await clock.time('GET /images/local', () =>
        fc.assert(
          fc.asyncProperty(
            stepIds,
            fc.boolean(),
            signing,
            fc.uuid(),
            async (stepId, encode, how, eventId) => {
              const query = encode
                ? `stepId=${encodeURIComponent(stepId)}`
                : `stepId=${stepId.replace(/[#\s]/g, '')}`;
              const answer = await send(url, {
                method: 'GET',
                path: `/images/local?${query}`,
                headers: signedWith(how, SECRET, '', eventId),
              });
              expectHandled(answer, `GET /images/local?${query.slice(0, 80)} (${how})`);
              if (how !== 'valid') expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
            },
          ),
          settings,
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
            'query ($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id image { reference digest sizeBytes availableLocally localReference copyState bytesDone } } } }',
          ),
          variables: fc.oneof(
            representations.map((r) => ({ r })),
            wrongValue.map((r) => ({ r })),
            fc.jsonValue({ maxDepth: 3 }),
          ),
        }),
        fc.record({
          query: fc.constant(
            'query ($r: String!, $d: String) { containerImage(reference: $r, digest: $d) { reference digest sizeBytes availableLocally estimatedCopySeconds message } }',
          ),
          // Only references to the emulated registries, and values that are not strings: no lookup leaves the machine.
          variables: fc.record(
            {
              r: fc.oneof(
                references(),
                wrongValue.filter((value) => typeof value !== 'string'),
              ),
              d: fc.oneof(fc.constant(image.digest), fc.string({ maxLength: 80 }), wrongValue),
            },
            { requiredKeys: [] },
          ),
        }),
      );
      const callers = fc.constantFrom<Record<string, string>>(
        signIdentity(GATEWAY_SECRET, { user: 'alice', roles: [] }),
        signIdentity(GATEWAY_SECRET, { user: 'root', roles: ['admin'] }),
        signIdentity(`${GATEWAY_SECRET}-not`, { user: 'alice', roles: [] }),
        signIdentity(GATEWAY_SECRET, { user: 'alice', roles: [] }, Date.now() - 3600_000),
        {},
        { authorization: 'Bearer dev:alice' },
        { 'x-srcnet-identity': 'e30', 'x-srcnet-identity-signature': 'x' },
      );
      await clock.time('/graphql', () => assertGraphQL(url, { operations, field: '__typename', callers }));
    },
  );
});
