import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type {
  OperationName,
  WireCallbackRegistration,
  WireJobList,
  WireSubmitResponse,
} from '../../src/preparedata/mapping.ts';
import { DEFAULT_PREPAREDATA_MAPPING } from '../../src/preparedata/mapping.ts';
import {
  checkCallback,
  checkDid,
  checkLifetime,
  checkNamespace,
  checkUrl,
  StageRequestError,
} from '../../src/preparedata/request.ts';
import type { Catalogue, DidEntry, UrlEntry } from '../catalogue.ts';
import type { CallbackNotifier } from '../callbacks/notifier.ts';
import type { FaultInjector, Faults } from '../faults/faults.ts';
import type { RestartPolicy, StagingEngine, SubmitInput } from '../staging/engine.ts';
import { StagingError } from '../staging/engine.ts';
import type { RequestStats } from '../stats.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on the emulated API's routes: counted, faulted and authenticated. */
    operation?: OperationName;
  }
}

export interface RestartOptions {
  /** What happens to transfers that were running: start again from zero (default) or fail. */
  inFlight?: RestartPolicy;
  /** How long the service is unreachable (connections refused) before it is back. */
  downtimeMs?: number;
}

/** The emulator-level actions the `/_emulator` routes expose. */
export interface AdminActions {
  stats(): unknown;
  resetStats(): void;
  restart(options: RestartOptions): Promise<void>;
  setFaults(faults: Faults): void;
  getFaults(): Faults;
}

/** Everything that outlives one HTTP server (a restart with downtime builds a new one). */
export interface ServerContext {
  engine: StagingEngine;
  notifier: CallbackNotifier;
  faults: FaultInjector;
  requests: RequestStats;
  catalogue: Catalogue;
  /** `${owner}\n${key}` to the first job submitted with that key, durable like the jobs. */
  idempotency: Map<string, { fingerprint: string; jobId: string }>;
  /** The user a bearer token stands for, or undefined when it is not acceptable. */
  authenticate(authorization: string | undefined): string | undefined;
  admin: AdminActions;
  logger?: FastifyBaseLogger;
}

const routes = DEFAULT_PREPAREDATA_MAPPING.routes;
const LIST_PARAM = DEFAULT_PREPAREDATA_MAPPING.listQueryParam;
const IDEMPOTENCY_HEADER = DEFAULT_PREPAREDATA_MAPPING.idempotencyHeader;
const MAX_LIST_IDS = 1000;

type Body = Record<string, unknown>;

function bodyObject(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new StageRequestError('body must be a JSON object');
  return body as Body;
}

/** The wire submit body to engine input; messages use the wire field names. */
function parseSubmit(body: unknown): Omit<SubmitInput, 'owner'> {
  const o = bodyObject(body);
  const area = o['to_storage_area_uuid'];
  if (typeof area !== 'string' || area === '')
    throw new StageRequestError('to_storage_area_uuid must be a non-empty string');
  const list = (key: string): unknown[] => {
    const value = o[key] ?? [];
    if (!Array.isArray(value)) throw new StageRequestError(`${key} must be an array`);
    return value;
  };
  const dids = list('dids').map((did, i) => {
    const d = (typeof did === 'object' && did !== null ? did : {}) as Body;
    if (typeof d['namespace'] !== 'string' || typeof d['name'] !== 'string')
      throw new StageRequestError(`dids[${i}] must be an object with string namespace and name`);
    return checkDid({ namespace: d['namespace'], name: d['name'] }, `dids[${i}]`);
  });
  const urls = list('urls').map((url, i) => {
    if (typeof url !== 'string') throw new StageRequestError(`urls[${i}] must be a string`);
    return checkUrl(url, `urls[${i}]`);
  });
  if (dids.length + urls.length === 0)
    throw new StageRequestError('dids and urls must name at least one source');
  const lifetime = o['lifetime'];
  if (typeof lifetime !== 'number') throw new StageRequestError('lifetime must be a number of seconds');
  const input: Omit<SubmitInput, 'owner'> = {
    areaId: area,
    dids,
    urls,
    lifetimeSeconds: checkLifetime(lifetime, 'lifetime'),
  };
  const parent = o['parent_namespace'];
  if (parent !== undefined && parent !== null) {
    if (typeof parent !== 'string') throw new StageRequestError('parent_namespace must be a string');
    input.parentNamespace = checkNamespace(parent, 'parent_namespace');
  }
  if (o['callback'] !== undefined && o['callback'] !== null)
    input.callback = parseRegistration(o['callback'], 'callback');
  return input;
}

function parseRegistration(value: unknown, where: string): WireCallbackRegistration {
  const o = bodyObject(value);
  if (typeof o['url'] !== 'string' || typeof o['secret'] !== 'string')
    throw new StageRequestError(`${where} must have string url and secret`);
  return checkCallback({ url: o['url'], secret: o['secret'] }, where);
}

function asList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter(
    (v): v is string => typeof v === 'string' && v !== '',
  );
}

/** The emulated prepareData HTTP API plus the `/_emulator` control routes. */
export function buildServer(ctx: ServerContext): FastifyInstance {
  const app = Fastify({
    ...(ctx.logger ? { loggerInstance: ctx.logger } : { logger: false }),
    forceCloseConnections: true,
  });
  const owners = new WeakMap<FastifyRequest, string>();
  const hangAfter = new WeakSet<FastifyRequest>();
  const hanging = new Set<{ socket: Socket }>();

  const owner = (request: FastifyRequest): string => owners.get(request)!;

  /** Keeps a hung request's socket open until the client gives up or the server closes. */
  const hold = (socket: Socket, release?: () => void) => {
    const entry = { socket };
    hanging.add(entry);
    socket.once('close', () => {
      hanging.delete(entry);
      release?.();
    });
  };

  app.addHook('onRequest', async (request, reply) => {
    const operation = request.routeOptions.config?.operation;
    if (request.url.startsWith('/_emulator') || request.url === '/healthz') return;
    const params = request.params as { jobId?: string };
    const ids = params.jobId
      ? [params.jobId]
      : operation === 'listJobs'
        ? asList((request.query as Record<string, unknown>)[LIST_PARAM])
        : [];
    ctx.requests.record(request.method, request.routeOptions.url, operation, ids);
    if (!operation) return;
    const decision = ctx.faults.forRequest(operation);
    if (decision.delayMs) await sleep(decision.delayMs);
    if (decision.hang === 'before') {
      // Never answered; the socket stays open until the client gives up or the server closes.
      hold(request.raw.socket);
      reply.hijack();
      return;
    }
    if (decision.hang === 'after') hangAfter.add(request);
    if (decision.reject) {
      if (decision.reject.retryAfterSeconds !== undefined)
        reply.header('retry-after', String(decision.reject.retryAfterSeconds));
      return reply
        .code(decision.reject.status)
        .send({ detail: `injected fault: HTTP ${decision.reject.status} from the prepareData emulator` });
    }
    const user = ctx.authenticate(request.headers.authorization);
    if (!user)
      return reply.code(401).header('www-authenticate', 'Bearer').send({ detail: 'Not authenticated' });
    owners.set(request, user);
  });

  app.addHook('onSend', async (request, _reply, payload) => {
    if (!hangAfter.has(request)) return payload;
    // The work is done; only the answer is lost, as when a response times out in the network.
    await new Promise<void>((release) => hold(request.raw.socket, release));
    return payload;
  });

  // Destroying a held socket releases it (see `hold`), so closing never waits for a hang.
  app.addHook('preClose', async () => {
    for (const hang of hanging) hang.socket.destroy();
  });

  app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
    if (error instanceof StagingError) return reply.code(error.status).send({ detail: error.message });
    if (error instanceof StageRequestError || error instanceof RangeError)
      // FastAPI's validation error shape, which SRCNet services return.
      return reply.code(422).send({ detail: [{ loc: ['body'], msg: error.message, type: 'value_error' }] });
    if (error.statusCode && error.statusCode < 500)
      return reply.code(error.statusCode).send({ detail: error.message });
    request.log.error({ err: error }, 'prepareData emulator failed');
    return reply.code(500).send({ detail: 'Internal Server Error' });
  });

  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ detail: 'Not Found' }));

  const api = (
    operation: OperationName,
    handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
  ) => {
    const route = routes[operation];
    app.route({ method: route.method, url: route.path, config: { operation }, handler });
  };

  api('submit', async (request, reply) => {
    const user = owner(request);
    const input = parseSubmit(request.body);
    const key = request.headers[IDEMPOTENCY_HEADER];
    const idempotencyKey = typeof key === 'string' && key !== '' ? `${user}\n${key}` : undefined;
    const fingerprint = JSON.stringify(request.body);
    if (idempotencyKey) {
      const earlier = ctx.idempotency.get(idempotencyKey);
      if (earlier && earlier.fingerprint !== fingerprint)
        throw new StagingError(
          422,
          `${IDEMPOTENCY_HEADER} ${String(key)} was already used for a different request`,
        );
      if (earlier) {
        ctx.requests.recordForJob(earlier.jobId, 'submit');
        return reply.code(200).send({ job_id: earlier.jobId } satisfies WireSubmitResponse);
      }
    }
    const job = ctx.engine.submit({ owner: user, ...input });
    if (idempotencyKey) ctx.idempotency.set(idempotencyKey, { fingerprint, jobId: job.id });
    ctx.requests.recordForJob(job.id, 'submit');
    return reply.code(201).send({ job_id: job.id } satisfies WireSubmitResponse);
  });

  api('listJobs', async (request) => {
    const ids = [...new Set(asList((request.query as Record<string, unknown>)[LIST_PARAM]))];
    if (ids.length === 0)
      throw new StageRequestError(`query parameter ${LIST_PARAM} must name at least one job`);
    if (ids.length > MAX_LIST_IDS)
      throw new StageRequestError(`query parameter ${LIST_PARAM} may name at most ${MAX_LIST_IDS} jobs`);
    const result: WireJobList = { jobs: [], not_found: [] };
    for (const id of ids) {
      const job = ctx.engine.get(owner(request), id);
      if (job) result.jobs.push(ctx.engine.toWire(job));
      else result.not_found.push(id);
    }
    return result;
  });

  api('getJob', async (request) => {
    const { jobId } = request.params as { jobId: string };
    return ctx.engine.toWire(ctx.engine.require(owner(request), jobId));
  });

  api('extendLifetime', async (request) => {
    const { jobId } = request.params as { jobId: string };
    const lifetime = bodyObject(request.body)['lifetime'];
    if (typeof lifetime !== 'number') throw new StageRequestError('lifetime must be a number of seconds');
    return ctx.engine.toWire(ctx.engine.extend(owner(request), jobId, checkLifetime(lifetime, 'lifetime')));
  });

  api('release', async (request) => {
    const { jobId } = request.params as { jobId: string };
    return ctx.engine.toWire(ctx.engine.release(owner(request), jobId));
  });

  api('registerCallback', async (request) => {
    const registration = parseRegistration(request.body, 'body');
    ctx.notifier.setClientRegistration(owner(request), registration);
    return { url: registration.url };
  });

  api('unregisterCallback', async (request, reply) => {
    ctx.notifier.setClientRegistration(owner(request), undefined);
    return reply.code(204).send();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/_emulator/stats', async () => ctx.admin.stats());
  app.delete('/_emulator/stats', async (_request, reply) => {
    ctx.admin.resetStats();
    return reply.code(204).send();
  });
  app.get('/_emulator/faults', async () => ctx.admin.getFaults());
  app.put('/_emulator/faults', async (request) => {
    ctx.admin.setFaults(bodyObject(request.body) as Faults);
    return ctx.admin.getFaults();
  });
  app.post('/_emulator/restart', async (request, reply) => {
    const options = (request.body ?? {}) as RestartOptions;
    if (options.inFlight !== undefined && options.inFlight !== 'restart' && options.inFlight !== 'fail')
      throw new StageRequestError('inFlight must be "restart" or "fail"');
    // Answer first: with downtime this very server is about to close.
    setImmediate(() =>
      ctx.admin.restart(options).catch((error: unknown) => app.log.error({ err: error }, 'restart failed')),
    );
    return reply.code(202).send({ restarting: true });
  });
  app.get('/_emulator/catalogue', async () => ctx.catalogue.toJSON());
  app.post('/_emulator/catalogue/dids', async (request, reply) => {
    ctx.catalogue.addDid(bodyObject(request.body) as unknown as DidEntry);
    return reply.code(204).send();
  });
  app.post('/_emulator/catalogue/urls', async (request, reply) => {
    ctx.catalogue.addUrl(bodyObject(request.body) as unknown as UrlEntry);
    return reply.code(204).send();
  });

  return app;
}
