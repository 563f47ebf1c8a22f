/**
 * Steps through the whole stack while everything that can go wrong does: the emulated Skaha,
 * prepareData and Harbor fail a tenth of their requests and drop a fifth of their callbacks,
 * repeat a tenth and swap some; the broker, the Skaha worker and Redis are each killed once
 * mid-run. Every step must still end in the phase it should, once, and every subscriber must see
 * it. The summary table is the figure docs/reliability.md quotes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFor } from '../../subgraphs/preparedata/test/stack.ts';
import { startE2EStack, subscribe, type E2EStack, STACK_START_MS } from '../support/stack.ts';

/** The issue's 300 under CI; fewer by default so that a local `npm test` stays quick. */
const STEPS = Number(process.env.FAULT_STEPS ?? (process.env.CI === 'true' ? 300 : 60));
const USERS = ['ada', 'ben', 'cy', 'dot', 'eve'];
const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'REJECTED', 'EXPIRED'];
/** Lost callbacks are found by the workers' reconciliation and lost notices by the gateway's catch-up. */
const RECONCILE_SECONDS = '5';

const FAULTS = {
  skaha: {
    SKAHA_FAULT_ERROR_RATE: '0.1',
    SKAHA_FAULT_CALLBACK_DROP_RATE: '0.2',
    SKAHA_FAULT_CALLBACK_DUPLICATE_RATE: '0.1',
    SKAHA_FAULT_CALLBACK_REORDER_RATE: '0.1',
  },
  preparedata: {
    PREPAREDATA_FAULT_ERROR_RATE: '0.1',
    PREPAREDATA_FAULT_CALLBACK_DROP_RATE: '0.2',
    PREPAREDATA_FAULT_CALLBACK_DUPLICATE_RATE: '0.1',
    PREPAREDATA_FAULT_CALLBACK_REORDER_RATE: '0.1',
  },
  harbor: {
    HARBOR_FAULT_5XX_RATE: '0.1',
    HARBOR_FAULT_WEBHOOK_DROP_RATE: '0.2',
    HARBOR_FAULT_WEBHOOK_DUPLICATE_RATE: '0.1',
    HARBOR_FAULT_WEBHOOK_REORDER_RATE: '0.1',
  },
};

const WATCH = /* GraphQL */ `
  subscription Watch {
    executionStepChanged {
      id
      phase
    }
  }
`;

type Kind = 'container' | 'staged' | 'missing';
interface Submitted {
  id: string;
  user: string;
  kind: Kind;
  at: number;
}

/** Which step is which: a tenth ask for a DID the DataLake does not have, a third stage data. */
const kindOf = (i: number): Kind => (i % 10 === 9 ? 'missing' : i % 3 === 1 ? 'staged' : 'container');

function requestOf(kind: Kind, i: number) {
  const request =
    kind === 'container'
      ? (() => {
          const staged = requestFor([]) as Record<string, unknown>;
          delete staged['data'];
          delete staged['volumes'];
          return staged;
        })()
      : requestFor([kind === 'missing' ? `testing:no-such-file-${i}` : 'testing:zrq-test-example-011-25MiB']);
  return { ...request, schedule: { requested: { duration: 'PT10M' } } };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

/** A Redis of our own, so that it can be killed without touching anyone else's. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    const up = await new Promise<boolean>((answer) => {
      const socket = createServer().listen(port, '127.0.0.1');
      socket.once('listening', () => socket.close(() => answer(false)));
      socket.once('error', () => answer(true));
    });
    if (up) return child;
    await new Promise((wait) => setTimeout(wait, 100));
  }
  throw new Error(`redis-server did not listen on ${port}`);
}

const stopped = (child: ChildProcess) =>
  new Promise<void>((done) =>
    child.exitCode !== null || child.signalCode !== null ? done() : child.once('exit', () => done()),
  );

interface SkahaStats {
  requests: { bySession: Record<string, Record<string, number>> };
  faults: Record<'error' | 'drop' | 'duplicate' | 'reorder', number>;
}
interface PrepareDataStats {
  requests: { byJob: Record<string, Record<string, number>> };
  faults: { error: number };
  callbacks: Record<'dropped' | 'duplicated' | 'reordered', number>;
}
interface HarborStats {
  faults: { error: number };
  webhooks: Record<'dropped' | 'duplicated' | 'reordered', number>;
  proxyCache: { pulls: number };
  replication: { executions: Record<string, unknown> };
}

let stack: E2EStack;
let redis: ChildProcess;
let redisPort: number;
let failed = false;

async function startStack(round: number) {
  // The emulators draw their faults from a seeded random source: a new seed each round.
  const seed = String(round * 7919);
  failed = false;
  redisPort = await freePort();
  redis = await startRedis(redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  stack = await startE2EStack({
    name: 'faults',
    customise: (specs) =>
      specs
        .filter((spec) => spec.name !== 'portal')
        .map((spec) => {
          const extra: Record<string, string> =
            ({
              'skaha-emulator': { ...FAULTS.skaha, SKAHA_EMULATOR_SEED: seed },
              'preparedata-emulator': {
                ...FAULTS.preparedata,
                PREPAREDATA_EMULATOR_SEED: seed,
                PREPAREDATA_EMULATOR_TIME_SCALE: '10',
              },
              'harbor-emulator': { ...FAULTS.harbor, HARBOR_EMULATOR_SEED: seed },
              skaha: { SKAHA_RECONCILE_SECONDS: RECONCILE_SECONDS },
              preparedata: { PREPAREDATA_RECONCILE_SECONDS: RECONCILE_SECONDS },
              harbor: { HARBOR_RECONCILE_SECONDS: RECONCILE_SECONDS },
              broker: { REDIS_URL: redisUrl, SITE_CORES: '100000', SITE_MEMORY_GIB: '100000' },
              gateway: {
                REDIS_URL: redisUrl,
                CATCH_UP_SECONDS: RECONCILE_SECONDS,
                RATE_LIMIT_PER_MINUTE: '0',
              },
            }[spec.name] as Record<string, string> | undefined) ?? {};
          return { ...spec, env: { ...spec.env, ...extra } };
        }),
  });
}

async function stopStack() {
  await stack?.stop(failed);
  redis?.kill('SIGKILL');
}

async function submit(i: number): Promise<Submitted> {
  const kind = kindOf(i);
  const user = USERS[i % USERS.length]!;
  const made = await stack.graphql(
    'mutation Run($request: ExecutionRequestInput!) { executeDirect(request: $request) { id } }',
    { request: requestOf(kind, i) },
    `dev:${user}`,
  );
  if (!made.body.data?.executeDirect?.id)
    throw new Error(`step ${i}: executeDirect answered ${made.status} ${JSON.stringify(made.body)}`);
  return { id: made.body.data.executeDirect.id, user, kind, at: Date.now() };
}

async function finalState(step: Submitted) {
  const read = await stack.graphql(
    'query S($id: ID!) { executionStep(id: $id) { phase meta { messages { message } } history { to at } } }',
    { id: step.id },
    `dev:${step.user}`,
  );
  return read.body.data?.executionStep as
    | { phase: string; meta: { messages: { message: string }[] }; history: { to: string; at: string }[] }
    | undefined;
}

/** The issue asks for three passes in a row under CI: each on a fresh stack, with fresh draws. */
const ROUNDS = process.env.CI === 'true' ? [1, 2, 3] : [1];

describe.each(ROUNDS)(`under faults, round %i of ${ROUNDS.length}`, (round) => {
  beforeAll(() => startStack(round), STACK_START_MS);
  afterAll(stopStack);

  it(
    `${STEPS} steps end as they should, once each, and every subscriber sees each final phase`,
    async () => {
      try {
        const watchers = new Map(USERS.map((user) => [user, subscribe(stack.ws(`dev:${user}`), WATCH)]));
        await new Promise((settle) => setTimeout(settle, 1000));
        const seen = new Map<string, { phase: string; at: number }[]>();
        const record = () => {
          for (const watch of watchers.values())
            for (const event of watch.events.splice(0)) {
              const step = event.data?.executionStepChanged;
              if (!step) continue;
              if (!seen.has(step.id)) seen.set(step.id, []);
              seen.get(step.id)!.push({ phase: step.phase, at: Date.now() });
            }
        };
        const ticker = setInterval(record, 50);

        const steps: Submitted[] = [];
        const restarts: Record<string, number> = {};
        const third = Math.ceil(STEPS / 3);
        const restart = async (name: string, how: () => Promise<void>) => {
          const started = Date.now();
          await how();
          restarts[name] = Date.now() - started;
        };
        for (let i = 0; i < STEPS; i++) {
          steps.push(await submit(i));
          if (i === third - 1) await restart('broker', () => stack.launched.restart('broker', 'SIGKILL'));
          if (i === 2 * third - 1)
            await restart('skaha worker', () => stack.launched.restart('skaha', 'SIGKILL'));
        }
        await restart('redis', async () => {
          redis.kill('SIGKILL');
          await stopped(redis);
          await new Promise((down) => setTimeout(down, 2000));
          redis = await startRedis(redisPort);
        });

        const deadline = Date.now() + 10 * 60_000;
        const finals = new Map<string, Awaited<ReturnType<typeof finalState>>>();
        while (finals.size < steps.length && Date.now() < deadline) {
          for (const step of steps) {
            if (finals.has(step.id)) continue;
            const state = await finalState(step);
            if (state && FINAL.includes(state.phase)) finals.set(step.id, state);
          }
          if (finals.size < steps.length) await new Promise((wait) => setTimeout(wait, 2000));
        }
        // Time for the last events to reach the subscribers, through a catch-up at worst.
        const told = () => steps.every((step) => FINAL.includes(seen.get(step.id)?.at(-1)?.phase ?? ''));
        const waitUntil = Date.now() + 30_000;
        while (!told() && Date.now() < waitUntil) {
          record();
          await new Promise((wait) => setTimeout(wait, 250));
        }
        clearInterval(ticker);
        record();

        const [skaha, preparedata, harbor] = (await Promise.all(
          [stack.ports.skahaEmulator, stack.ports.preparedataEmulator, stack.ports.harborEmulator].map(
            async (port) => (await fetch(`http://127.0.0.1:${port}/_emulator/stats`)).json(),
          ),
        )) as [SkahaStats, PrepareDataStats, HarborStats];

        const byPhase: Record<string, number> = {};
        for (const state of finals.values()) byPhase[state!.phase] = (byPhase[state!.phase] ?? 0) + 1;
        const percentile = (values: number[], p: number) =>
          [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
        const toldAfter = steps.map((step) => {
          const state = finals.get(step.id);
          const committed = Date.parse(state?.history.at(-1)?.at ?? '');
          const told = seen.get(step.id)?.find((event) => event.phase === state?.phase)?.at;
          return told !== undefined && committed ? told - committed : Infinity;
        });
        const took = steps.map((step) => Date.parse(finals.get(step.id)?.history.at(-1)?.at ?? '') - step.at);
        const sessions = Object.values(skaha.requests.bySession).filter((calls) => calls.createSession);
        const jobs = Object.values(preparedata.requests.byJob).filter((calls) => calls.submit);
        const rows: [string, string][] = [
          [
            'steps',
            `${steps.length}: ${Object.entries(byPhase)
              .map(([phase, n]) => `${n} ${phase}`)
              .join(', ')}`,
          ],
          [
            'restarts (down → healthy)',
            Object.entries(restarts)
              .map(([name, ms]) => `${name} ${ms} ms`)
              .join(', '),
          ],
          [
            'Skaha',
            `${skaha.faults.error} requests failed; callbacks ${skaha.faults.drop} dropped, ${skaha.faults.duplicate} duplicated, ${skaha.faults.reorder} reordered; ${sessions.length} sessions`,
          ],
          [
            'prepareData',
            `${preparedata.faults.error} requests failed; callbacks ${preparedata.callbacks.dropped} dropped, ${preparedata.callbacks.duplicated} duplicated, ${preparedata.callbacks.reordered} reordered; ${jobs.length} jobs`,
          ],
          [
            'Harbor',
            `${harbor.faults.error} requests failed; webhooks ${harbor.webhooks.dropped} dropped, ${harbor.webhooks.duplicated} duplicated, ${harbor.webhooks.reordered} reordered; ${harbor.proxyCache.pulls} pulls`,
          ],
          ['submit → final phase', `p50 ${percentile(took, 0.5)} ms, max ${Math.max(...took)} ms`],
          [
            'final phase committed → subscriber',
            `p50 ${percentile(toldAfter, 0.5)} ms, p99 ${percentile(toldAfter, 0.99)} ms, max ${Math.max(...toldAfter)} ms`,
          ],
        ];
        const width = Math.max(...rows.map(([name]) => name.length));
        console.log(
          ['faults:', ...rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`)].join('\n'),
        );

        // None lost: every step reached a final phase.
        expect(steps.filter((step) => !finals.has(step.id)).map((step) => step.id)).toEqual([]);
        for (const step of steps) {
          const state = finals.get(step.id)!;
          if (step.kind === 'missing') {
            expect(state.phase, `step ${step.id}`).toBe('FAILED');
            expect(state.meta.messages.map((m) => m.message).join(' ')).toContain('no-such-file');
          } else {
            expect(
              { id: step.id, phase: state.phase },
              state.meta.messages.map((m) => m.message).join('; '),
            ).toEqual({ id: step.id, phase: 'COMPLETED' });
          }
          // Every subscriber (one per user, watching all its steps) saw the final phase, last.
          expect(seen.get(step.id)?.at(-1)?.phase, `what ${step.user} saw of ${step.id}`).toBe(state.phase);
        }
        // No backend action twice: one session per step that ran, one staging job per step with
        // data, one copy of the one image, whatever was retried or repeated.
        expect(sessions.every((calls) => calls.createSession === 1)).toBe(true);
        expect(sessions).toHaveLength(byPhase['COMPLETED']!);
        expect(jobs.every((calls) => calls.submit === 1)).toBe(true);
        expect(jobs).toHaveLength(steps.filter((step) => step.kind !== 'container').length);
        expect(harbor.proxyCache.pulls + Object.keys(harbor.replication.executions).length).toBe(1);
      } catch (error) {
        failed = true;
        throw error;
      }
    },
    20 * 60_000,
  );
});
