import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { schemaNameForKind } from '@srcnet/execution-step-schema';
import { createPubSub, signedHeaders, type IdentityOptions, type StepPubSub } from '@srcnet/service-kit';
import type { BrokerConfig } from './config.ts';
import { openDatabase, type Database } from './database/database.ts';
import { cancel, enqueue, jobMigrations, type JobTables } from './jobs/queue.ts';
import { startRunner, type Runner } from './jobs/runner.ts';
import { registerGraphQL } from './graphql/server.ts';
import { constantEstimate } from './offers/estimate.ts';
import { registerRestRoutes } from './rest/routes.ts';
import { simulatedPlatform, type SimulatedPlatform } from './simulation/platform.ts';
import {
  Broker,
  COMMAND_JOB,
  TIMER_JOB,
  type BrokerOptions,
  type CommandPayload,
  type TimerPayload,
} from './steps/service.ts';
import { stepMigrations, type BrokerTables } from './steps/tables.ts';

/** Where commands go when no worker is configured for them: the built-in simulated platform. */
export const SIMULATION = 'inprocess:simulation';

export interface RunningBroker {
  app: FastifyInstance;
  broker: Broker;
  database: Database<BrokerTables & JobTables>;
  runner: Runner;
  pubsub: StepPubSub;
  simulation: SimulatedPlatform;
  url: string;
  close(): Promise<void>;
}

/** Which worker prepares what: images in Harbor, sessions in Skaha, data in prepareData. */
export function workerFor(workers: BrokerConfig['workers']) {
  return (component: { role: string; kind: string }): string => {
    const docker = schemaNameForKind(component.kind) === 'DockerContainer';
    const url =
      component.role === 'executable'
        ? docker
          ? workers.harbor
          : workers.skaha
        : component.role === 'compute'
          ? workers.skaha
          : workers.preparedata;
    return url ? `${url.replace(/\/$/, '')}/commands` : SIMULATION;
  };
}

export interface StartOptions {
  logger?: boolean;
  pubsub?: StepPubSub;
  /** Replaces the preparation-time estimate (tests and benchmarks use zero). */
  estimate?: BrokerOptions['estimate'];
}

export async function startBroker(config: BrokerConfig, options: StartOptions = {}): Promise<RunningBroker> {
  if (!config.databaseUrl.startsWith('postgres') && config.databaseUrl !== ':memory:') {
    mkdirSync(dirname(config.databaseUrl), { recursive: true });
  }
  const database = await openDatabase<BrokerTables & JobTables>(config.databaseUrl, {
    ...jobMigrations,
    ...stepMigrations,
  });
  const pubsub = options.pubsub ?? createPubSub({ redisUrl: config.redisUrl });
  const identity: IdentityOptions = {
    mode: config.authMode,
    gatewaySecret: config.gatewaySecret,
    admins: config.admins,
  };
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 1024 * 1024 });

  let publicUrl = config.publicUrl;
  // Jobs a transaction queued become due when it commits; the runner starts once the server listens.
  let wakeJobs = () => {};
  const broker: Broker = new Broker(
    {
      dialect: database.dialect,
      db: database.db as never,
      transaction: async (fn) => {
        const result = await database.transaction((tx) => fn(tx as never));
        wakeJobs();
        return result;
      },
    },
    {
      enqueue: (tx, job) => enqueue(tx as never, job, database.dialect),
      cancel: (tx, key) => cancel(tx as never, key),
    },
    pubsub,
    {
      rules: config.rules,
      estimate: options.estimate ?? constantEstimate,
      workerFor: workerFor(config.workers),
    },
  );
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
  app.get('/readyz', async (_request, reply) => {
    try {
      await database.ping();
      return { status: 'ready' };
    } catch (error) {
      return reply.code(503).send({ status: 'not ready', reason: (error as Error).message });
    }
  });

  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', '127.0.0.1');
  publicUrl ??= url;
  // Started once the address is known: commands carry it as their callback URL.
  const jobs = await startRunner({
    database: database as never,
    handlers: {
      [TIMER_JOB]: (job) => broker.onTimer(job.payload as TimerPayload),
      [COMMAND_JOB]: async (job) => {
        const { target, command: queued } = job.payload as CommandPayload;
        const command = { ...queued, callbackUrl: `${publicUrl}/callbacks` };
        if (target === SIMULATION) return simulation.handle(command);
        const body = JSON.stringify(command);
        const response = await fetch(target, {
          method: 'POST',
          headers: signedHeaders(config.callbackSecret, body, command.commandId),
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok)
          throw new Error(`${target} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
      },
    },
    onError: (job, error) => app.log.warn({ job: job.key, err: error }, 'job failed; it will be retried'),
  });
  wakeJobs = jobs.wake;
  return {
    app,
    broker,
    database,
    runner: jobs,
    pubsub,
    simulation,
    url,
    async close() {
      simulation.stop();
      await jobs.stop();
      await app.close();
      await pubsub.dispose();
      await database.close();
    },
  };
}
