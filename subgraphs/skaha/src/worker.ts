/**
 * The Skaha worker process: broker commands at `POST /commands`, Skaha's status callbacks at
 * `POST /skaha-callbacks`, the subgraph at `/graphql`, and `/healthz`, `/readyz`, `/metrics`.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { parseDocument, validateWorkerCommand, type Ivoa } from '@srcnet/execution-step-schema';
import {
  CallbackOutbox,
  CommandInbox,
  nestingProblem,
  registerLatestCallbacks,
  signedHeaders,
  traceLogFields,
  traceRequests,
  verify,
} from '@srcnet/service-kit';
import type { SkahaWorkerConfig } from './config.ts';
import { registerGraphQL } from './graphql/server.ts';
import { countedApi, workerMetrics } from './metrics.ts';
import { SkahaClient, readSessionCallback, type SkahaApi } from './skaha/index.ts';
import { SessionTracker } from './sessions/tracker.ts';
import { BatchedWatcher, reconcileTiming } from './sessions/watcher.ts';
import { openStore, type Db } from './store/store.ts';

export interface RunningSkahaWorker {
  url: string;
  tracker: SessionTracker;
  watcher: BatchedWatcher;
  db: Db;
  /** Whether Skaha is sending status callbacks (decided at start). */
  callbacks: boolean;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Replaces the HTTP client (tests). */
  api?: SkahaApi;
}

export async function startSkahaWorker(
  config: SkahaWorkerConfig,
  options: StartOptions = {},
): Promise<RunningSkahaWorker> {
  const log = options.logger ?? pino({ name: 'skaha-worker', level: config.logLevel, mixin: traceLogFields });
  const metrics = workerMetrics();
  const api = countedApi(
    options.api ?? new SkahaClient({ baseUrl: config.skahaUrl, token: config.skahaToken }),
    metrics.backendRequests,
  );
  const db = await openStore(config.sqlitePath);
  const outbox = new CallbackOutbox({
    db,
    secret: config.callbackSecret,
    log,
    service: 'skaha',
    counters: { sent: () => metrics.callbacksSent.inc(), failed: () => metrics.callbacksFailed.inc() },
  });
  const callbacks = await decideCallbacks(config, api, log);
  const tracker = new SessionTracker({
    api,
    db,
    outbox,
    log,
    notebookImage: config.notebookImage,
    registryAuth: config.registryAuth,
    dockerImage: (stepId, docker) => localImage(config, log, stepId, docker),
    // With callbacks Skaha announces what a create or delete leads to: no need to look sooner.
    onChange: () => {
      if (!callbacks) watcher.nudge();
    },
  });

  const inbox = new CommandInbox(db, (command) => tracker.handle(command), log);

  // With callbacks the watcher only reconciles (a lost callback): never faster than its interval.
  const watcher = new BatchedWatcher(
    api,
    tracker,
    log,
    callbacks ? reconcileTiming(config.watcher) : config.watcher,
  );
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  traceRequests(app, 'skaha');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const rawBody = (request: FastifyRequest) => (typeof request.body === 'string' ? request.body : '');

  app.post('/commands', async (request, reply) => {
    const body = rawBody(request);
    const check = verify(config.callbackSecret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    let document: unknown;
    try {
      document = parseDocument(body, 'json');
    } catch (error) {
      return reply.code(400).send({ error: `the body is not JSON: ${(error as Error).message}` });
    }
    const tooDeep = nestingProblem(document);
    if (tooDeep) return reply.code(400).send({ issues: [{ ...tooDeep, rule: 'max-depth' }] });
    const validated = validateWorkerCommand(document);
    if (!validated.ok) return reply.code(400).send({ issues: validated.issues });
    const command = validated.value as Ivoa.WorkerCommand;
    await inbox.accept(command, body);
    return reply.code(202).send({ accepted: command.commandId });
  });

  registerLatestCallbacks(app, { secret: config.callbackSecret, outbox });

  let lastInstance: string | undefined;
  app.post('/skaha-callbacks', async (request, reply) => {
    const reading = readSessionCallback(config.skahaCallbackSecret, request.headers, rawBody(request));
    if (!reading.ok) {
      metrics.skahaCallbacks.inc({ outcome: 'rejected' });
      return reply
        .code(reading.malformed ? 400 : 401)
        .type('text/plain')
        .send(reading.reason);
    }
    const event = reading.event;
    // A new Skaha process may have lost events: one listing catches up on all sessions.
    if (lastInstance !== undefined && event.instance !== lastInstance) void watcher.runNow();
    lastInstance = event.instance;
    const component = await tracker.componentOf(event.sessionId, event.name);
    if (!component) {
      metrics.skahaCallbacks.inc({ outcome: 'unknown' });
      return reply.code(200).send();
    }
    await tracker.observe(
      component,
      {
        status: event.type === 'session.deleted' ? 'Deleted' : event.status,
        ...(event.session ? { session: event.session } : {}),
        ...(event.message ? { message: event.message } : {}),
        at: Date.parse(event.time),
      },
      event.sequence,
    );
    metrics.skahaCallbacks.inc({ outcome: 'applied' });
    return reply.code(200).send();
  });

  registerGraphQL(app, {
    api,
    tracker,
    log,
    identity: { mode: config.authMode, gatewaySecret: config.gatewaySecret, admins: config.admins },
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await db.selectFrom('commands').select('command_id').limit(1).execute();
      return { status: 'ready', callbacks };
    } catch (error) {
      return reply.code(503).send({ status: 'not ready', reason: (error as Error).message });
    }
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', '127.0.0.1');

  if (callbacks)
    tracker.callbackTarget = {
      url: `${(config.publicUrl ?? url).replace(/\/$/, '')}/skaha-callbacks`,
      secret: config.skahaCallbackSecret,
    };
  // The first pass catches up on whatever changed while the worker was down.
  watcher.start(0);
  await outbox.resume();
  await inbox.resume();
  log.info({ url, skaha: config.skahaUrl, callbacks }, 'skaha worker listening');

  return {
    url,
    tracker,
    watcher,
    db,
    callbacks,
    async close() {
      await watcher.stop();
      await app.close();
      await outbox.close();
      await db.destroy();
    },
  };
}

async function decideCallbacks(config: SkahaWorkerConfig, api: SkahaApi, log: Logger): Promise<boolean> {
  if (config.callbacks !== 'auto') return config.callbacks === 'on';
  try {
    return await api.supportsCallbacks();
  } catch (error) {
    log.warn({ err: error }, 'cannot tell whether Skaha offers callbacks; using the batched watcher');
    return false;
  }
}

/**
 * The local Harbor copy of a DockerContainer image, from the Harbor worker; the first location
 * when there is no Harbor worker or it has no copy (logged, since Skaha may then refuse the image).
 */
async function localImage(
  config: SkahaWorkerConfig,
  log: Logger,
  stepId: string,
  docker: Ivoa.DockerContainer,
): Promise<string | undefined> {
  const first = docker.image?.locations?.[0];
  if (!config.harborWorkerUrl) return first;
  const url = `${config.harborWorkerUrl.replace(/\/$/, '')}/images/local?stepId=${encodeURIComponent(stepId)}`;
  try {
    const response = await fetch(url, {
      headers: signedHeaders(config.callbackSecret, '', randomUUID()),
      signal: AbortSignal.timeout(5000),
    });
    if (response.ok) {
      const body = (await response.json()) as { localReference?: string };
      if (body.localReference) return body.localReference;
    }
    log.warn(
      { stepId, status: response.status, first },
      'no local Harbor copy of the image; using its first location',
    );
  } catch (error) {
    log.warn(
      { err: error, stepId, first },
      'the Harbor worker did not answer; using the first image location',
    );
  }
  return first;
}
