import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ResourceContext } from '../../src/skaha/types.ts';
import { SESSION_TYPES } from '../../src/skaha/types.ts';
import type { CallbackPublisher } from '../callbacks/publisher.ts';
import { CallbackRegistry } from '../callbacks/registry.ts';
import type { FaultInjector, Faults } from '../faults/faults.ts';
import type { Operation } from '../operations.ts';
import type { RequestCounter } from '../requests.ts';
import type { Capacity, SessionEngine, SessionRecord } from '../sessions/engine.ts';
import type { CreateRules, Params } from '../sessions/validation.ts';
import { planApp, planSession } from '../sessions/validation.ts';
import type { ViewSettings } from '../sessions/views.ts';
import { eventsTable, logsText, publicSessionJson, sessionJson, statsJson } from '../sessions/views.ts';
import { badRequest, HttpError, notFound } from './errors.ts';

export interface RestartOptions {
  /** How long the service is unreachable (connections refused) before it is back. */
  downtimeMs?: number;
}

/** Test hooks served under `/_emulator`; never counted, faulted or authenticated. */
export interface AdminHooks {
  stats(): unknown;
  resetStats(): void;
  restart(options: RestartOptions): Promise<void>;
  setFaults(faults: Faults): void;
  getFaults(): Faults;
}

export interface ServerContext {
  engine: SessionEngine;
  registry: CallbackRegistry;
  publisher: CallbackPublisher;
  faults: FaultInjector;
  requests: RequestCounter;
  rules: CreateRules;
  context: ResourceContext;
  cluster: Capacity;
  views: ViewSettings;
  /** The user a bearer token stands for, or undefined. */
  authenticate(authorization: string | undefined): string | undefined;
  /** Authenticated but not authorised (not in the Skaha users group): 403. */
  deniedUsers: ReadonlySet<string>;
  admin: AdminHooks;
  logger?: FastifyBaseLogger;
}

const BASE = '/skaha/v1';

interface Incoming {
  user: string;
  params: Params;
  path: Record<string, string>;
  header(name: string): string | undefined;
  now: number;
}

interface Outcome {
  status?: number;
  text?: string;
  json?: unknown;
  /** The session the request created, for the per-session counts. */
  session?: string;
}

type Handler = (incoming: Incoming) => Outcome;

/** Query string and form (or JSON) body as one parameter list, as Skaha's SyncInput reads them. */
function paramsOf(request: FastifyRequest): Params {
  const params = new URL(request.url, 'http://emulator').searchParams;
  const body = request.body;
  if (body instanceof URLSearchParams) for (const [key, value] of body) params.append(key, value);
  else if (body && typeof body === 'object')
    for (const [key, value] of Object.entries(body))
      if (typeof value === 'string' || typeof value === 'number') params.append(key, String(value));
  return params;
}

function text(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const bytes = (outcome: Outcome) =>
  outcome.json === undefined ? (outcome.text ?? '') : JSON.stringify(outcome.json);

export function buildServer(ctx: ServerContext): FastifyInstance {
  const app = Fastify({
    // A hung request must not keep close() waiting.
    forceCloseConnections: true,
    ...(ctx.logger ? { loggerInstance: ctx.logger } : { logger: false }),
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, new URLSearchParams(body as string)),
  );
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    const status = error instanceof HttpError ? error.status : (error.statusCode ?? 500);
    if (status >= 500) ctx.logger?.error({ err: error }, 'emulator error');
    return reply.code(status).type('text/plain; charset=utf-8').send(`${error.message}\n`);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).type('text/plain; charset=utf-8').send(`not found: ${request.method} ${request.url}\n`),
  );

  /**
   * One API route: counted, then faults, then authentication, then the work. The handler is
   * synchronous, so the lifecycle is advanced and read in one step.
   */
  const api = (
    method: 'GET' | 'POST' | 'DELETE',
    route: string,
    operation: Operation | ((params: Params) => Operation),
    handler: Handler,
  ) => {
    const template = `${method} ${BASE}${route.replace(/:(\w+)/g, '{$1}')}`;
    app.route({
      method,
      url: BASE + route,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const params = paramsOf(request);
        const op = typeof operation === 'function' ? operation(params) : operation;
        const path = request.params as Record<string, string>;
        ctx.requests.request(template, op);
        if (path.id) ctx.requests.session(path.id, op);
        const faults = ctx.faults.forRequest(op);
        if (faults.hang === 'before') return void reply.hijack();
        if (faults.reject) {
          if (faults.reject.retryAfterSeconds !== undefined)
            void reply.header('retry-after', String(faults.reject.retryAfterSeconds));
          const message =
            faults.reject.status === 429 ? 'too many requests' : 'service temporarily unavailable';
          return reply.code(faults.reject.status).type('text/plain; charset=utf-8').send(`${message}\n`);
        }
        const user = ctx.authenticate(text(request, 'authorization'));
        if (!user) throw new HttpError(401, 'authentication required: send Authorization: Bearer <token>');
        if (ctx.deniedUsers.has(user))
          throw new HttpError(403, `permission denied: ${user} may not use sessions`);
        const now = Date.now();
        ctx.engine.advance(now);
        const outcome = handler({ user, params, path, header: (name) => text(request, name), now });
        if (outcome.session) ctx.requests.session(outcome.session, op);
        if (faults.hang === 'after') return void reply.hijack();
        if (faults.delayMs) await sleep(faults.delayMs);
        return reply
          .code(outcome.status ?? 200)
          .type(outcome.json === undefined ? 'text/plain; charset=utf-8' : 'application/json')
          .send(bytes(outcome));
      },
    });
  };

  const sessionOf = (incoming: Incoming): SessionRecord => {
    const record = ctx.engine.get(incoming.path.id!, incoming.user);
    if (!record) throw notFound(`session ${incoming.path.id} not found`);
    return record;
  };
  const statusFilter = (params: Params) => {
    const type = params.get('type');
    const status = params.get('status')?.toLowerCase();
    return (r: SessionRecord) => (!type || r.type === type) && (!status || r.status.toLowerCase() === status);
  };

  api(
    'GET',
    '/session',
    (params) =>
      params.get('view') === 'all'
        ? 'listPublicSessions'
        : params.get('view') === 'stats'
          ? 'getStats'
          : 'listSessions',
    ({ user, params }) => {
      const view = params.get('view');
      if (view === 'stats') return { json: statsJson(ctx.engine.used(), ctx.cluster, ctx.context) };
      const matches = statusFilter(params);
      if (view === 'all')
        return {
          json: ctx.engine
            .all()
            .filter((r) => !r.appid && matches(r))
            .map(publicSessionJson),
        };
      const wantApps = params.get('type') === 'desktop-app';
      const listed = ctx.engine
        .all(user)
        .filter((r) => (wantApps ? r.type === 'desktop-app' : r.type !== 'desktop-app'))
        .filter((r) => view !== 'interactive' || r.type !== 'headless')
        .filter(matches);
      return { json: listed.map((r) => sessionJson(r, ctx.views)) };
    },
  );

  api('POST', '/session', 'createSession', ({ user, params, header, now }) => {
    const plan = planSession(user, params, header('x-skaha-registry-auth'), ctx.rules, ctx.engine.all(user));
    const callbackURL = params.get('callbackURL');
    const callbackSecret = params.get('callbackSecret');
    const wantsCallback = callbackURL !== null || callbackSecret !== null;
    // Checked before anything is created, so that a bad callback does not leave a session behind.
    if (wantsCallback) CallbackRegistry.check(callbackURL ?? undefined, callbackSecret ?? undefined);
    const record = ctx.engine.create(plan, now, (created) => {
      if (wantsCallback) ctx.registry.register(user, callbackURL!, callbackSecret!, created.id);
    });
    return { text: `${record.id}\n`, session: record.id };
  });

  api(
    'GET',
    '/session/:id',
    (params) =>
      params.get('view') === 'logs'
        ? 'getSessionLogs'
        : params.get('view') === 'events'
          ? 'getSessionEvents'
          : 'getSession',
    (incoming) => {
      const record = sessionOf(incoming);
      const view = incoming.params.get('view');
      if (view === 'logs') return { text: logsText(record) };
      if (view === 'events') {
        if (record.startedAt === undefined) throw notFound(`no pod found for session ${record.id}`);
        return { text: eventsTable(record.events) };
      }
      return { json: sessionJson(record, ctx.views) };
    },
  );

  api('POST', '/session/:id', 'renewSession', (incoming) => {
    const action = incoming.params.get('action');
    if (!action) throw badRequest('Cannot modify an existing session');
    if (action !== 'renew') throw badRequest(`unrecognized action: ${action}`);
    const record = ctx.engine.get(incoming.path.id!, incoming.user);
    if (!record || !ctx.engine.renew(record, incoming.now))
      throw badRequest(`no active job for session ${incoming.path.id}`);
    return {};
  });

  // Skaha swallows every error of a delete and answers 200.
  api('DELETE', '/session/:id', 'deleteSession', ({ user, path, now }) => {
    const record = ctx.engine.get(path.id!, user);
    if (record) ctx.engine.remove(record, now);
    return {};
  });

  // Skaha ignores {id} here and lists all of the caller's desktop apps.
  api('GET', '/session/:id/app', 'listApps', ({ user, params }) => ({
    json: ctx.engine
      .all(user)
      .filter((r) => r.type === 'desktop-app')
      .filter(statusFilter(params))
      .map((r) => sessionJson(r, ctx.views)),
  }));

  api('POST', '/session/:id/app', 'attachApp', (incoming) => {
    const desktop = sessionOf(incoming);
    if (desktop.type !== 'desktop' || !(desktop.status === 'Pending' || desktop.status === 'Running'))
      throw badRequest(`session ${desktop.id} is not an active desktop session`);
    const app = ctx.engine.attachApp(
      desktop,
      planApp(incoming.user, incoming.params, ctx.rules),
      incoming.now,
    );
    return { text: `${app.appid}\n` };
  });

  api('GET', '/session/:id/app/:appid', 'getApp', ({ user, path }) => {
    const app = ctx.engine.getApp(path.id!, path.appid!, user);
    if (!app) throw notFound(`app ${path.appid} of session ${path.id} not found`);
    return { json: sessionJson(app, ctx.views) };
  });

  api('DELETE', '/session/:id/app/:appid', 'deleteApp', ({ user, path, now }) => {
    const app = ctx.engine.getApp(path.id!, path.appid!, user);
    if (app) ctx.engine.remove(app, now);
    return {};
  });

  api('GET', '/image', 'listImages', ({ params }) => {
    const type = params.get('type');
    if (type && ![...SESSION_TYPES, 'desktop-app'].includes(type))
      throw badRequest(`Invalid session type: ${type}`);
    return { json: ctx.rules.images.filter((image) => !type || image.types.includes(type)) };
  });

  api('GET', '/context', 'getContext', () => ({ json: ctx.context }));

  api('GET', '/repository', 'listRepositories', () => ({ json: ctx.rules.registryHosts }));

  // The proposed callback extension (docs/skaha-callbacks.md).
  api('POST', '/callbacks', 'registerCallback', ({ user, params }) => {
    const session = params.get('session') || undefined;
    if (session && !ctx.engine.get(session, user)) throw notFound(`session ${session} not found`);
    const registration = ctx.registry.register(
      user,
      params.get('url') ?? undefined,
      params.get('secret') ?? undefined,
      session,
    );
    return { text: `${registration.id}\n` };
  });

  api('GET', '/callbacks', 'listCallbacks', ({ user }) => ({
    json: ctx.registry.list(user).map(CallbackRegistry.view),
  }));

  api('GET', '/callbacks/:cid', 'getCallback', ({ user, path }) => {
    const registration = ctx.registry.get(user, path.cid!);
    if (!registration) throw notFound(`callback registration ${path.cid} not found`);
    return { json: CallbackRegistry.view(registration) };
  });

  api('DELETE', '/callbacks/:cid', 'unregisterCallback', ({ user, path }) => {
    if (ctx.registry.get(user, path.cid!)) ctx.registry.remove(path.cid!);
    return {};
  });

  app.get('/skaha/availability', async (_request, reply) =>
    reply
      .type('text/xml')
      .send(
        '<?xml version="1.0" encoding="UTF-8"?>\n<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n' +
          '  <vosi:available>true</vosi:available>\n  <vosi:note>skaha emulator is accepting requests</vosi:note>\n</vosi:availability>\n',
      ),
  );

  app.get('/_emulator/stats', async () => ctx.admin.stats());
  app.delete('/_emulator/stats', async (_request, reply) => {
    ctx.admin.resetStats();
    return reply.code(204).send();
  });
  app.get('/_emulator/faults', async () => ctx.admin.getFaults());
  app.put('/_emulator/faults', async (request, reply) => {
    try {
      ctx.admin.setFaults((request.body ?? {}) as Faults);
    } catch (error) {
      throw badRequest((error as Error).message);
    }
    return reply.code(204).send();
  });
  app.post('/_emulator/restart', async (request, reply) => {
    const downtimeMs = Number((request.body as { downtimeMs?: unknown } | undefined)?.downtimeMs ?? 0);
    if (!(downtimeMs >= 0)) throw badRequest('downtimeMs must be a non-negative number');
    // Answer first: the restart may close this very server.
    setImmediate(() =>
      ctx.admin
        .restart({ downtimeMs })
        .catch((error: unknown) => ctx.logger?.error({ err: error }, 'restart failed')),
    );
    return reply.code(202).send();
  });
  return app;
}
