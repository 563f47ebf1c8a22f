import { SpanKind, SpanStatusCode, context, trace, type Context, type Span } from '@opentelemetry/api';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { contextFrom, tracer } from './tracing.ts';

const active = new WeakMap<FastifyRequest, { span: Span; context: Context }>();

export interface TraceRequestsOptions {
  /**
   * Write fastify's 'incoming request' line once the request's trace is known, so that it carries
   * its id (create the app with a TracedLogController, which leaves that line to this hook).
   */
  logRequests?: boolean;
}

/**
 * Fastify's request lines written inside the request's trace: 'incoming request' is left to
 * traceRequests (fastify writes it before any hook could know the trace), and the completion and
 * error lines, written outside the request's async context, get its context back.
 */
export class TracedLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    inRequest(request, () => super.requestCompleted(error, request, reply));
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    inRequest(request, () => super.defaultErrorLog(error, request, reply));
  }
}

function inRequest(request: FastifyRequest, fn: () => void): void {
  const entry = active.get(request);
  if (entry) context.with(entry.context, fn);
  else fn();
}

/**
 * A server span per request that continues the caller's trace (its `traceparent` header). Fastify
 * parses the body outside any hook, which loses the async context, so the span's context is made
 * active again for the handler.
 */
export function traceRequests(
  app: FastifyInstance,
  service: string,
  options: TraceRequestsOptions = {},
): void {
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = contextFrom(request.headers);
    const route = request.routeOptions.url ?? request.url.split('?')[0];
    const span = tracer(service).startSpan(
      `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url },
      },
      parent,
    );
    const current = trace.setSpan(parent, span);
    active.set(request, { span, context: current });
    context.with(current, () => {
      if (options.logRequests) request.log.info({ req: request }, 'incoming request');
      done();
    });
  });
  app.addHook('preHandler', (request, _reply, done) => inRequest(request, done));
  app.addHook('onResponse', (request, reply, done) => {
    const entry = active.get(request);
    if (entry) {
      entry.span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR });
      entry.span.end();
    }
    done();
  });
}
