/**
 * The Harbor worker process: broker commands at `POST /commands`, Harbor webhooks at
 * `POST /webhooks/harbor`, `GET /images/local` for the Skaha worker, `POST /estimates` for the
 * broker's offers, the subgraph at `/graphql`, and `/healthz`, `/readyz`, `/metrics`.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import { parseDocument, schemaNameForKind, validateWorkerCommand } from '@srcnet/execution-step-schema';
import {
  CallbackOutbox,
  inSpan,
  nestingProblem,
  registerLatestCallbacks,
  SpanKind,
  traceLogFields,
  traceRequests,
  verify,
} from '@srcnet/service-kit';
import type { HarborWorkerConfig } from './config.ts';
import { registerGraphQL } from './graphql/server.ts';
import {
  HarborClient,
  parseWebhookPayload,
  WebhookPayloadError,
  webhookAuthorized,
  type HarborApi,
} from './harbor/index.ts';
import type { WebhookEventType } from './harbor/types.ts';
import { ImageCopier } from './images/copier.ts';
import { CopyEstimator } from './images/estimate.ts';
import { ImageLocator, type Track } from './images/locator.ts';
import { ImageStatusService } from './images/status.ts';
import { openStore, type Db } from './store/store.ts';
import { CopyWatcher } from './worker/copy-watcher.ts';
import { ImageWorker } from './worker/image-worker.ts';

export interface RunningHarborWorker {
  url: string;
  worker: ImageWorker;
  db: Db;
  /** Resolves once the webhook policies are registered (immediately when webhooks are off). */
  ready: Promise<void>;
  close(): Promise<void>;
}

const WEBHOOK_EVENTS: WebhookEventType[] = ['REPLICATION', 'PUSH_ARTIFACT', 'PULL_ARTIFACT'];

export async function startHarborWorker(
  config: HarborWorkerConfig,
  options: { logger?: Logger; harbor?: HarborApi } = {},
): Promise<RunningHarborWorker> {
  const log =
    options.logger ??
    pino({ name: 'harbor-worker', level: process.env.LOG_LEVEL ?? 'info', mixin: traceLogFields });
  const db = await openStore(config.sqlitePath);
  const registry = new Registry();
  const backendRequests = new Counter({
    name: 'harbor_worker_backend_requests_total',
    help: 'Calls to Harbor and to source registries, by operation and outcome',
    labelNames: ['operation', 'outcome'],
    registers: [registry],
  });
  const callbacks = new Counter({
    name: 'harbor_worker_callbacks_total',
    help: 'Callback deliveries to the broker, by outcome',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: 'harbor_worker_webhooks_total',
    help: 'Harbor webhook deliveries received, by event type and outcome',
    labelNames: ['type', 'outcome'],
    registers: [registry],
  });
  const track: Track = (operation, call) =>
    inSpan('harbor', `harbor ${operation}`, { kind: SpanKind.CLIENT }, async () => {
      try {
        const result = await call();
        backendRequests.inc({ operation, outcome: 'ok' });
        return result;
      } catch (error) {
        backendRequests.inc({ operation, outcome: 'error' });
        throw error;
      }
    });

  const harbor =
    options.harbor ??
    new HarborClient({
      url: config.harbor.url,
      credentials: { username: config.harbor.username, password: config.harbor.password },
    });
  const locator = new ImageLocator(harbor, config, track);
  const copier = new ImageCopier(harbor, locator, config, track);
  const estimator = new CopyEstimator(db, config.estimate);
  const status = new ImageStatusService(locator, estimator, config.lookupCacheMs);
  const outbox = new CallbackOutbox({
    db,
    secret: config.callbackSecret,
    log,
    service: 'harbor',
    counters: {
      sent: () => callbacks.inc({ outcome: 'sent' }),
      failed: () => callbacks.inc({ outcome: 'failed' }),
    },
  });
  const worker = new ImageWorker({
    db,
    harbor,
    locator,
    copier,
    estimator,
    outbox,
    track,
    log,
    afterCopy: () => status.invalidate(),
  });
  const identity = { mode: config.authMode, gatewaySecret: config.gatewaySecret, admins: config.admins };

  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  traceRequests(app, 'harbor');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const rawBody = (request: FastifyRequest) => (typeof request.body === 'string' ? request.body : '');

  /** Broker and Skaha worker calls: signed like commands, or anything in dev mode. */
  const trusted = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const check = verify(config.callbackSecret, request.headers, rawBody(request));
    if (check.ok || config.authMode === 'dev') return true;
    void reply.code(401).send({ error: check.reason });
    return false;
  };

  app.post('/commands', async (request, reply) => {
    const body = rawBody(request);
    const check = verify(config.callbackSecret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    let document: unknown;
    try {
      document = parseDocument(body, 'json');
    } catch (error) {
      return reply.code(400).send({ error: `body: ${(error as Error).message}` });
    }
    const tooDeep = nestingProblem(document);
    if (tooDeep) return reply.code(400).send({ issues: [{ ...tooDeep, rule: 'max-depth' }] });
    const command = validateWorkerCommand(document);
    if (!command.ok) return reply.code(400).send({ issues: command.issues });
    const { component } = command.value;
    if (component.role !== 'executable' || schemaNameForKind(component.kind) !== 'DockerContainer')
      return reply.code(400).send({
        error: `component: the Harbor worker prepares executable DockerContainer components only (got ${component.role} ${component.kind})`,
      });
    const taken = await worker.accept(command.value);
    return reply.code(202).send({ accepted: command.value.commandId, repeated: !taken });
  });

  registerLatestCallbacks(app, { secret: config.callbackSecret, outbox });

  app.post('/webhooks/harbor', async (request, reply) => {
    if (!webhookAuthorized(request.headers.authorization, config.webhookAuthHeader)) {
      webhooks.inc({ type: 'unknown', outcome: 'unauthorized' });
      return reply.code(401).send({ error: 'Authorization does not match the webhook policy auth_header' });
    }
    let payload;
    try {
      payload = parseWebhookPayload(JSON.parse(rawBody(request)));
    } catch (error) {
      if (!(error instanceof WebhookPayloadError || error instanceof SyntaxError)) throw error;
      webhooks.inc({ type: 'unknown', outcome: 'invalid' });
      return reply.code(400).send({ error: error.message });
    }
    webhooks.inc({ type: payload.type, outcome: 'accepted' });
    void worker
      .onWebhook(payload)
      .catch((error: unknown) => log.error({ err: error }, 'webhook handling failed'));
    return reply.code(200).send({ ok: true });
  });

  app.get('/images/local', async (request, reply) => {
    if (!trusted(request, reply)) return reply;
    const stepId = (request.query as { stepId?: unknown }).stepId;
    if (typeof stepId !== 'string' || stepId === '')
      return reply.code(400).send({ error: 'stepId: a query parameter naming the step is required' });
    const row = await db.selectFrom('images').selectAll().where('step_id', '=', stepId).executeTakeFirst();
    if (!row) return reply.code(404).send({ error: `no image is tracked for step ${stepId}` });
    if (row.available_locally !== 1 || !row.local_reference)
      return reply.code(409).send({
        error: `the image of step ${stepId} is not in the local Harbor yet (copyState ${row.copy_state})`,
        copyState: row.copy_state,
      });
    return { localReference: row.local_reference, digest: row.digest };
  });

  app.post('/estimates', async (request, reply) => {
    if (!trusted(request, reply)) return reply;
    let body: { image?: { locations?: unknown; digest?: unknown } };
    try {
      body = JSON.parse(rawBody(request)) as typeof body;
    } catch {
      return reply
        .code(400)
        .send({ error: 'body must be JSON: {"image": {"locations": [...], "digest": "sha256:..."}}' });
    }
    const locations = body?.image?.locations;
    const digest = body?.image?.digest;
    if (!Array.isArray(locations) || locations.length === 0 || !locations.every((l) => typeof l === 'string'))
      return reply.code(400).send({ error: 'image.locations must be a non-empty array of image references' });
    if (digest !== undefined && typeof digest !== 'string')
      return reply.code(400).send({ error: 'image.digest must be a string' });
    const estimate = await status.estimate({ locations, digest });
    if (estimate.problem) return reply.code(422).send({ error: estimate.problem, ...estimate });
    return estimate;
  });

  registerGraphQL(app, { db, status, identity });

  let webhooksRegistered = !config.webhooks;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    try {
      await db.selectFrom('commands').select('command_id').limit(1).execute();
      await harbor.ping();
      if (!webhooksRegistered)
        return reply.code(503).send({ status: 'not ready', reason: 'webhook policies not registered yet' });
      return { status: 'ready' };
    } catch (error) {
      return reply.code(503).send({ status: 'not ready', reason: (error as Error).message });
    }
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );

  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace('[::1]', '127.0.0.1');
  const webhookAddress = `${config.publicUrl ?? url}/webhooks/harbor`;

  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const register = async () => {
    await ensureProject(harbor, config.replicationProject, track);
    if (!config.webhooks) return;
    const projects = new Set([config.replicationProject, ...(await locator.proxyProjects()).values()]);
    const name = `srcnet-image-worker-${createHash('sha256').update(`${webhookAddress} ${config.webhookAuthHeader}`).digest('hex').slice(0, 12)}`;
    for (const project of projects) {
      const existing = await track('harbor.listWebhookPolicies', () =>
        harbor.listWebhookPolicies(project, { pageSize: 100 }),
      );
      if (existing.some((policy) => policy.name === name)) continue;
      await track('harbor.createWebhookPolicy', () =>
        harbor.createWebhookPolicy(project, {
          name,
          description: 'SRCNet image worker: copy completion',
          enabled: true,
          event_types: WEBHOOK_EVENTS,
          targets: [
            {
              type: 'http',
              address: webhookAddress,
              auth_header: config.webhookAuthHeader,
              skip_cert_verify: false,
              payload_format: 'Default',
            },
          ],
        }),
      );
    }
    webhooksRegistered = true;
  };
  const ready = new Promise<void>((resolve) => {
    const attempt = () =>
      register().then(resolve, (error: unknown) => {
        log.warn({ err: error }, 'could not register with Harbor; retrying in 5 s');
        later(5000, attempt);
      });
    attempt();
  });

  // Without webhooks it follows every copy; with them it reconciles, rarely, in case one was lost.
  const watcher = new CopyWatcher(harbor, worker, track);
  const every = config.webhooks ? config.reconcileIntervalMs : config.watchIntervalMs;
  const tick = () =>
    void watcher.pass().then(
      () => every > 0 && later(every, tick),
      (error: unknown) => {
        log.warn({ err: error }, 'copy watcher pass failed');
        later(every || config.watchIntervalMs, tick);
      },
    );
  // The first pass, at start-up, finds copies that ended while the worker was down.
  later(0, tick);

  await worker.resume();
  await outbox.resume();
  log.info(
    { url, harbor: config.harbor.url, webhooks: config.webhooks, webhookAddress },
    'harbor worker listening',
  );

  return {
    url,
    worker,
    db,
    ready,
    async close() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      await app.close();
      await worker.idle();
      await outbox.close();
      await db.destroy();
    },
  };
}

async function ensureProject(harbor: HarborApi, name: string, track: Track): Promise<void> {
  if (await track('harbor.projectExists', () => harbor.projectExists(name))) return;
  await track('harbor.createProject', () => harbor.createProject({ project_name: name, public: false }));
}
