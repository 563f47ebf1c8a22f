import Fastify, { type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import {
  createPubSub,
  signedHeaders,
  traceHeaders,
  TracedLogController,
  traceLogFields,
  traceRequests,
  type IdentityOptions,
  type StepPubSub,
} from '@srcnet/service-kit';
import type { BrokerConfig } from './config.ts';
import {
  cancel,
  engineMigrations,
  enqueue,
  startEngine,
  type Engine,
  type EngineTables,
} from './engine/index.ts';
import { registerGraphQL } from './graphql/server.ts';
import { brokerMetrics } from './metrics.ts';
import { createEstimator, type Estimator } from './estimates/index.ts';
import { constantEstimate, zeroEstimate, type EstimateSource } from './offers/estimate.ts';
import { harborImageCheck } from './offers/image-check.ts';
import { learnedEstimate } from './offers/learned.ts';
import { Reconciler, RECONCILE_JOB, workerNameFor } from './reconcile/reconciler.ts';
import { registerRestRoutes } from './rest/routes.ts';
import { simulatedPlatform, type SimulatedPlatform } from './simulation/platform.ts';
import { loaderById } from './steps/loader.ts';
import { Broker, COMMAND_JOB, TIMER_JOB, type CommandPayload, type TimerPayload } from './steps/service.ts';
import { countPreparing, observations } from './steps/store.ts';
import { stepMigrations, type BrokerTables } from './steps/tables.ts';
import { openStore, type Store } from './store/index.ts';

/** Where commands go when no worker is configured for them: the built-in simulated platform. */
export const SIMULATION = 'inprocess:simulation';

export interface RunningBroker {
  app: FastifyInstance;
  broker: Broker;
  store: Store<BrokerTables & EngineTables>;
  engine: Engine;
  pubsub: StepPubSub;
  simulation: SimulatedPlatform;
  /** What preparation took so far, as the learned estimates know it. */
  estimator: Estimator;
  url: string;
  close(): Promise<void>;
}

/** Where a component's commands go: its worker's `/commands`, or the simulation when none is set. */
export function workerFor(workers: BrokerConfig['workers']) {
  return (component: { role: string; kind: string }): string => {
    const url = workers[workerNameFor(component)];
    return url ? `${url.replace(/\/$/, '')}/commands` : SIMULATION;
  };
}

export interface StartOptions {
  /** Fastify's logger: pino options (`stream` redirects it, as tests do). */
  logger?: boolean | { level: string; stream?: DestinationStream };
  pubsub?: StepPubSub;
  /** Replaces the preparation-time estimate (tests and benchmarks use zero). */
  estimate?: EstimateSource;
}

/**
 * The estimator, having replayed every stored observation in the order the broker learned of
 * them: a restart keeps what was learned.
 */
async function restoreEstimator(
  config: BrokerConfig,
  db: Store<BrokerTables & EngineTables>['db'],
): Promise<Estimator> {
  const estimator = createEstimator({ quantile: config.estimateQuantile });
  for await (const record of observations(db as never)) estimator.observe(record.observation);
  return estimator;
}

function estimateSource(
  config: BrokerConfig,
  estimator: Estimator,
  db: Store<BrokerTables & EngineTables>['db'],
): EstimateSource {
  if (config.estimate === 'zero') return zeroEstimate;
  if (config.estimate === 'constants') return constantEstimate;
  const harbor = config.workers.harbor;
  return learnedEstimate({
    estimator,
    checkImage: harbor
      ? harborImageCheck({
          url: harbor,
          secret: config.callbackSecret,
          timeoutMs: config.imageCheckTimeoutMs,
        })
      : undefined,
    preparing: () => countPreparing(db as never),
  });
}

export async function startBroker(config: BrokerConfig, options: StartOptions = {}): Promise<RunningBroker> {
  const store = await openStore<BrokerTables & EngineTables>({
    url: config.databaseUrl,
    migrations: [engineMigrations, stepMigrations],
  });
  const estimator = await restoreEstimator(config, store.db);
  const pubsub = options.pubsub ?? createPubSub({ redisUrl: config.redisUrl });
  const identity: IdentityOptions = {
    mode: config.authMode,
    gatewaySecret: config.gatewaySecret,
    admins: config.admins,
  };
  const logger = options.logger ?? false;
  const app = Fastify({
    // Every line names the trace of the work it was written for (see traceRequests).
    logger: logger && { ...(logger === true ? {} : logger), mixin: traceLogFields },
    logController: new TracedLogController(),
    bodyLimit: 1024 * 1024,
  });
  traceRequests(app, 'broker', { logRequests: true });

  let publicUrl = config.publicUrl;
  const jobs: { engine?: Engine } = {};
  const metrics = brokerMetrics(store.db as never, () => jobs.engine);
  const broker: Broker = new Broker(
    {
      dialect: store.dialect,
      db: store.db as never,
      transaction: (fn) => store.transaction((tx) => fn(tx as never)),
    },
    {
      enqueue: (tx, job) => enqueue(tx as never, job),
      cancel: (tx, key) => cancel(tx as never, key),
    },
    pubsub,
    {
      rules: config.rules,
      estimate: options.estimate ?? estimateSource(config, estimator, store.db),
      learn: (observation) => estimator.observe(observation),
      workerFor: workerFor(config.workers),
      observer: {
        transition: (to) => metrics.transitions.inc({ to }),
        callback: (source, delayMs) => metrics.callbackDelay.observe({ source }, Math.max(0, delayMs) / 1000),
      },
    },
  );
  const reconciler = new Reconciler({
    db: store.db as never,
    broker,
    workers: config.workers,
    secret: config.callbackSecret,
    intervalMs: config.reconcileMs,
    log: app.log,
    recovered: (worker) => metrics.reconciledCallbacks.inc({ worker }),
  });
  // Deliveries claimed together mostly belong to the same few steps: one read for all of them.
  const stepsToSend = loaderById((ids) => broker.steps(ids), { cache: false });
  const simulation = simulatedPlatform(config.simulation, async (callback) => {
    await broker.applyCallback(callback, 'simulation');
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  registerRestRoutes(app, {
    broker,
    identity,
    callbackSecret: config.callbackSecret,
    baseUrl: config.publicUrl,
  });
  registerGraphQL(app, { broker, pubsub, identity, baseUrl: config.publicUrl });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  app.get('/readyz', async (_request, reply) => {
    try {
      await store.ping();
      return { status: 'ready' };
    } catch (error) {
      return reply.code(503).send({ status: 'not ready', reason: (error as Error).message });
    }
  });

  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', '127.0.0.1');
  publicUrl ??= url;
  // Started once the address is known: commands carry it as their callback URL.
  const engine = startEngine<BrokerTables & EngineTables>({
    store,
    handlers: {
      // Timers change state: run exactly once, in the engine's transaction, published after commit.
      [TIMER_JOB]: {
        style: 'state',
        run: (job, tx, hooks) =>
          broker.onTimer(job.payload as TimerPayload, { tx: tx as never, afterCommit: hooks.afterCommit }),
      },
      [COMMAND_JOB]: {
        style: 'delivery',
        run: async (job) => {
          const { target, command: queued } = job.payload as CommandPayload;
          const step = await stepsToSend.load(queued.stepId);
          if (!step) throw new Error(`step ${queued.stepId} of command ${queued.commandId} does not exist`);
          const command = { ...queued, step: step.document, callbackUrl: `${publicUrl}/callbacks` };
          if (target === SIMULATION) return simulation.handle(command);
          const body = JSON.stringify(command);
          const response = await fetch(target, {
            method: 'POST',
            headers: { ...signedHeaders(config.callbackSecret, body, command.commandId), ...traceHeaders() },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          if (!response.ok)
            throw new Error(
              `${target} answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
            );
        },
      },
      // The next slot's pass is queued first, so that a pass that fails (retried by the engine
      // with backoff, then dead) does not end the series.
      [RECONCILE_JOB]: {
        style: 'delivery',
        run: async () => {
          const next = reconciler.nextJob();
          if (next) await enqueue(store.db, next);
          await reconciler.pass();
        },
      },
    },
    leaseMs: config.jobLeaseMs,
    logger: app.log,
    ...(config.jobWake === 'poll' ? { pollEveryMs: 1000 } : {}),
  });
  jobs.engine = engine;
  if (Object.values(config.workers).some(Boolean))
    for (const job of reconciler.startJobs()) await enqueue(store.db, job);
  return {
    app,
    broker,
    store,
    engine,
    pubsub,
    simulation,
    estimator,
    url,
    async close() {
      simulation.stop();
      await engine.stop();
      await app.close();
      await pubsub.dispose();
      await store.close();
    },
  };
}
