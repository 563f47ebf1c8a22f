/**
 * The prepareData worker process: broker commands at `POST /commands`, prepareData's notifications
 * at `POST /notifications/preparedata`, the subgraph at `/graphql`, and `/healthz`, `/readyz`,
 * `/metrics`.
 */
import Fastify, { type FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { pino, type Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import { parseDocument, validateWorkerCommand, type Ivoa } from '@srcnet/execution-step-schema';
import {
  CallbackOutbox,
  CommandInbox,
  inSpan,
  nestingProblem,
  registerLatestCallbacks,
  SpanKind,
  traceLogFields,
  traceRequests,
  verify,
} from '@srcnet/service-kit';
import type { PrepareDataWorkerConfig } from './config.ts';
import { registerGraphQL } from './graphql/server.ts';
import { PrepareDataClient, readStageCallback, type PrepareDataApi } from './preparedata/index.ts';
import { Stager } from './staging/stager.ts';
import { openStore, type Db } from './store/store.ts';

export const NOTIFICATION_PATH = '/notifications/preparedata';

export interface RunningPrepareDataWorker {
  url: string;
  stager: Stager;
  db: Db;
  close(): Promise<void>;
}

type ApiOperation = keyof PrepareDataApi;

/** The same API, counting each call by operation and outcome for /metrics, each in a span. */
function counted(api: PrepareDataApi, counter: Counter<'operation' | 'outcome'>): PrepareDataApi {
  return new Proxy(api, {
    get(target, name: ApiOperation) {
      const method = target[name] as (...args: unknown[]) => Promise<unknown>;
      return (...args: unknown[]) =>
        inSpan('preparedata', `preparedata ${name}`, { kind: SpanKind.CLIENT }, async () => {
          try {
            const result = await method.apply(target, args);
            counter.inc({ operation: name, outcome: 'ok' });
            return result;
          } catch (error) {
            counter.inc({ operation: name, outcome: 'error' });
            throw error;
          }
        });
    },
  });
}

export async function startPrepareDataWorker(
  config: PrepareDataWorkerConfig,
  options: { logger?: Logger; api?: PrepareDataApi } = {},
): Promise<RunningPrepareDataWorker> {
  const log =
    options.logger ??
    pino({ name: 'preparedata-worker', level: process.env.LOG_LEVEL ?? 'info', mixin: traceLogFields });
  const db = await openStore(config.sqlitePath);
  const registry = new Registry();
  const backendRequests = new Counter({
    name: 'preparedata_worker_backend_requests_total',
    help: 'Calls to prepareData, by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const callbacks = new Counter({
    name: 'preparedata_worker_callbacks_total',
    help: 'Callback deliveries to the broker, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const notifications = new Counter({
    name: 'preparedata_worker_notifications_total',
    help: 'prepareData notifications received, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const api = counted(
    options.api ?? new PrepareDataClient({ baseUrl: config.prepareDataUrl, token: config.prepareDataToken }),
    backendRequests,
  );
  const outbox = new CallbackOutbox({
    db,
    secret: config.callbackSecret,
    log,
    service: 'preparedata',
    counters: {
      sent: () => callbacks.inc({ outcome: 'sent' }),
      failed: () => callbacks.inc({ outcome: 'failed' }),
    },
  });

  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  traceRequests(app, 'preparedata');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const rawBody = (request: FastifyRequest) => (typeof request.body === 'string' ? request.body : '');

  // The stager needs the public address for prepareData's notifications, known only after listen.
  const holder: { stager?: Stager } = {};
  const stager = () => holder.stager!;

  const inbox = new CommandInbox(db, (command) => stager().run(command), log);

  app.post('/commands', async (request, reply) => {
    const body = rawBody(request);
    const check = verify(config.callbackSecret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    let parsed: unknown;
    try {
      parsed = parseDocument(body, 'json');
    } catch (error) {
      return reply.code(400).send({ error: `body is not JSON: ${(error as Error).message}` });
    }
    const tooDeep = nestingProblem(parsed);
    if (tooDeep) return reply.code(400).send({ issues: [{ ...tooDeep, rule: 'max-depth' }] });
    const validated = validateWorkerCommand(parsed);
    if (!validated.ok) return reply.code(400).send({ issues: validated.issues });
    const command = validated.value as Ivoa.WorkerCommand;
    if (command.component.role !== 'storage' && command.component.role !== 'data')
      return reply.code(400).send({
        error: `/component/role: prepareData prepares storage and data components, not ${command.component.role}`,
      });
    await inbox.accept(command, body);
    return reply.code(202).send({ accepted: command.commandId });
  });

  registerLatestCallbacks(app, { secret: config.callbackSecret, outbox });

  app.post(NOTIFICATION_PATH, async (request, reply) => {
    const read = readStageCallback(config.prepareDataCallbackSecret, request.headers, rawBody(request));
    if (!read.ok) {
      notifications.inc({ outcome: 'refused' });
      return reply.code(read.malformed ? 400 : 401).send({ error: read.reason });
    }
    // A job not recorded yet (its submit answer still on its way): 503, so that prepareData retries.
    if (!(await stager().notified(read.event))) {
      notifications.inc({ outcome: 'unknown-job' });
      return reply.code(503).send({ error: `job ${read.event.jobId} is not known yet` });
    }
    notifications.inc({ outcome: 'applied' });
    return reply.code(200).send({ ok: true });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await sql`SELECT 1`.execute(db);
      return { status: 'ready' };
    } catch (error) {
      return reply.code(503).send({ status: 'not ready', reason: (error as Error).message });
    }
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  const identity = { mode: config.authMode, gatewaySecret: config.gatewaySecret, admins: config.admins };
  registerGraphQL(app, { db, extend: (stepId, seconds) => stager().extend(stepId, seconds), identity });

  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', '127.0.0.1');
  const publicUrl = (config.publicUrl ?? url).replace(/\/$/, '');
  holder.stager = new Stager({
    db,
    api,
    outbox,
    log,
    storageArea: config.storageArea,
    progressIntervalMs: config.progressIntervalMs,
    ...(config.callbacks === 'on'
      ? { notification: { url: publicUrl + NOTIFICATION_PATH, secret: config.prepareDataCallbackSecret } }
      : {}),
  });

  // Catch up after a restart: resume commands taken but not finished, deliver pending callbacks,
  // and read every followed job once (notifications sent while down are lost).
  await inbox.resume();
  await outbox.resume();
  // With callbacks on the same watcher reconciles, rarely, in case a notification was lost.
  const every = config.callbacks === 'off' ? config.watchIntervalMs : config.reconcileIntervalMs;
  let retry: NodeJS.Timeout | undefined;
  const reconcile = (): Promise<unknown> =>
    holder.stager!.reconcile().catch((error: unknown) => {
      log.warn({ err: error }, 'reconciliation failed');
      // Without a next tick, try the catch-up again until it succeeds.
      if (every === 0) retry = setTimeout(reconcile, config.watchIntervalMs);
    });
  void reconcile();
  const watcher = every > 0 ? setInterval(reconcile, every) : undefined;
  log.info(
    { url, callbacks: config.callbacks, storageArea: config.storageArea },
    'prepareData worker listening',
  );

  return {
    url,
    stager: holder.stager,
    db,
    async close() {
      clearInterval(watcher);
      clearTimeout(retry);
      await app.close();
      await holder.stager!.idle();
      await outbox.close();
      await db.destroy();
    },
  };
}
