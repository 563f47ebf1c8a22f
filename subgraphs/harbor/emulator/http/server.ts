/**
 * The HTTP face of the emulator: request counting, fault injection and authentication for
 * every request, Harbor's error bodies, the system endpoints, and `/_emulator` controls.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { artifactRoutes } from '../artifacts/routes.ts';
import { HarborFailure } from '../artifacts/store.ts';
import { ANONYMOUS } from '../auth/access.ts';
import { robotRoutes } from '../auth/routes.ts';
import type { ImageFixture } from '../config.ts';
import type { HarborCore } from '../core.ts';
import type { Faults } from '../faults/faults.ts';
import { FaultConfigError } from '../faults/faults.ts';
import { endpointRoutes } from '../registry/endpoint-routes.ts';
import { challenge, OciFailure, ociRouteKey, ociRoutes } from '../registry/oci-routes.ts';
import { replicationRoutes } from '../replication/routes.ts';
import { webhookRoutes } from '../webhooks/routes.ts';

export interface RestartOptions {
  /** How long Harbor stays down (the port refuses connections); 0 restarts in place. */
  downtimeMs?: number;
}

/** The emulator controls the server exposes under `/_emulator`. */
export interface AdminControls {
  stats(): unknown;
  resetStats(): void;
  restart(options?: RestartOptions): Promise<void>;
  addUpstreamImage(fixture: ImageFixture): { digest: string };
}

export const HARBOR_VERSION = 'v2.16.0-emulator';

function sendFault(
  reply: FastifyReply,
  reject: { status: number; retryAfterSeconds?: number },
  oci: boolean,
): FastifyReply {
  if (reject.status === 429)
    return reply
      .code(429)
      .header('retry-after', String(reject.retryAfterSeconds ?? 1))
      .send({
        errors: [
          { code: oci ? 'TOOMANYREQUESTS' : 'TOO_MANY_REQUEST', message: 'too many requests, retry later' },
        ],
      });
  // Harbor's nginx answers for a core that is down or slow; core itself answers 500 in JSON.
  if (reject.status >= 502 && reject.status <= 504)
    return reply
      .code(reject.status)
      .type('text/html')
      .send(
        `<html>\r\n<head><title>${reject.status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${reject.status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
      );
  return reply
    .code(reject.status)
    .send({ errors: [{ code: 'UNKNOWN', message: 'internal server error (injected fault)' }] });
}

export function buildServer(core: HarborCore, admin: AdminControls): FastifyInstance {
  const app = Fastify({
    logger: core.options.logger ? { level: 'info' } : false,
    forceCloseConnections: true,
  });
  // Reference values may not be shared between requests: null here, set in onRequest.
  app.decorateRequest('principal', null as never);
  app.decorateRequest('routeKey', '');
  app.decorateRequest('lateFaults', null as never);

  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const oci = path === '/v2' || path.startsWith('/v2/');
    request.routeKey = oci
      ? ociRouteKey(request.method, path)
      : `${request.method} ${(request.routeOptions.url ?? path).replace(/:(\w+)/g, '{$1}')}`;
    request.lateFaults = {};
    request.principal = ANONYMOUS;
    if (path.startsWith('/_emulator')) return;
    core.requests.count(request.routeKey);
    const faults = core.faults.forRequest(request.routeKey);
    if (faults.reject) return sendFault(reply, faults.reject, oci);
    if (faults.timeout === 'before') {
      // Never answer: the connection stays open until the client gives up.
      reply.hijack();
      return;
    }
    request.lateFaults = faults;
    const principal = core.access.authenticate(request.headers.authorization, oci);
    if (!principal)
      throw oci
        ? new OciFailure(401, 'UNAUTHORIZED', 'authentication required: bad credentials')
        : new HarborFailure(401, 'UNAUTHORIZED', 'unauthorized');
    request.principal = principal;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const faults = request.lateFaults;
    if (faults?.timeout === 'after') await new Promise((resolve) => reply.raw.once('close', resolve));
    if (faults?.delayMs) await sleep(faults.delayMs);
    return payload;
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const oci = request.url.startsWith('/v2');
    let status = 500;
    let code = 'UNKNOWN';
    let message = 'internal server error';
    if (error instanceof HarborFailure) {
      ({ status, code, message } = error);
    } else if (error instanceof FaultConfigError || error instanceof RangeError) {
      status = 400;
      code = 'BAD_REQUEST';
      message = error.message;
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      code = 'BAD_REQUEST';
      message = error.message;
    } else {
      request.log.error(error);
    }
    if (status === 401 && oci)
      reply.header(
        'www-authenticate',
        challenge(core, error instanceof OciFailure ? error.scope : undefined),
      );
    return reply.code(status).send({ errors: [oci ? { code, message, detail: null } : { code, message }] });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      errors: [{ code: 'NOT_FOUND', message: `no route for ${request.method} ${request.url.split('?')[0]}` }],
    }),
  );

  app.get('/api/v2.0/ping', async (_request, reply) => reply.type('text/plain').send('Pong'));
  app.get('/api/v2.0/health', async () => ({
    status: 'healthy',
    components: ['core', 'database', 'jobservice', 'portal', 'redis', 'registry', 'registryctl'].map(
      (name) => ({ name, status: 'healthy' }),
    ),
  }));
  app.get('/api/v2.0/systeminfo', async () => ({
    harbor_version: HARBOR_VERSION,
    external_url: core.externalUrl,
    registry_url: new URL(core.externalUrl).host,
    auth_mode: 'db_auth',
    project_creation_restriction: 'everyone',
    self_registration: false,
    has_ca_root: false,
    read_only: false,
    notification_enable: true,
    registry_storage_provider_name: 'filesystem',
    primary_auth_mode: false,
  }));

  artifactRoutes(app, core);
  endpointRoutes(app, core);
  replicationRoutes(app, core);
  webhookRoutes(app, core);
  robotRoutes(app, core);
  ociRoutes(app, core);

  app.get('/_emulator/stats', async () => admin.stats());
  app.post('/_emulator/stats/reset', async () => {
    admin.resetStats();
    return {};
  });
  app.get('/_emulator/faults', async () => core.faults.get());
  app.put('/_emulator/faults', async (request) => {
    core.faults.set((request.body ?? {}) as Faults);
    return core.faults.get();
  });
  app.post('/_emulator/restart', async (request) => {
    const body = (request.body ?? {}) as RestartOptions;
    // Answer first: with downtime the server closes, and this request with it.
    setImmediate(() => void admin.restart(body));
    return { restarting: true };
  });
  app.post('/_emulator/upstream-images', async (request, reply) => {
    try {
      return reply.code(201).send(admin.addUpstreamImage(request.body as ImageFixture));
    } catch (error) {
      throw new HarborFailure(400, 'BAD_REQUEST', error instanceof Error ? error.message : String(error));
    }
  });

  return app;
}
