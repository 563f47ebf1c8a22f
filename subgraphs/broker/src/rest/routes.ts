import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  DocumentSyntaxError,
  KINDS,
  MEDIA_TYPES,
  formatOf,
  parseDocument,
  serializeDocument,
  validateComponentCallback,
  type DocumentFormat,
  type Ivoa,
} from '@srcnet/execution-step-schema';
import {
  AuthenticationError,
  MAX_NESTING,
  identityOf,
  verify,
  type IdentityOptions,
} from '@srcnet/service-kit';
import { message } from '../offers/messages.ts';
import { offerSetDocument, stepDocument } from '../steps/documents.ts';
import { ClientError, checkNesting, invalidDocument, notFound } from '../steps/errors.ts';
import type { Broker } from '../steps/service.ts';

/**
 * The IVOA ExecutionBroker REST API at the broker's root, and the callback endpoint the workers
 * use. JSON or YAML in and out; YAML when the client names no type, as the IVOA draft says.
 */

export interface RestOptions {
  broker: Broker;
  identity: IdentityOptions;
  /** The secret workers sign their callbacks with. */
  callbackSecret: string;
  /** The base URL clients reach the broker at, for Location headers and meta.url. */
  baseUrl?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function responseFormat(request: FastifyRequest): DocumentFormat {
  const accept = request.headers.accept;
  if (accept && /json|ya?ml/i.test(accept)) return formatOf(accept);
  if (request.body !== undefined && request.headers['content-type'])
    return formatOf(request.headers['content-type']);
  return 'yaml';
}

function send(request: FastifyRequest, reply: FastifyReply, status: number, body: unknown) {
  const format = responseFormat(request);
  return reply.code(status).type(MEDIA_TYPES[format]).send(serializeDocument(body, format));
}

function errorBody(status: number, messages: Ivoa.MessageItem[]): Ivoa.ErrorResponse {
  return { status, messages };
}

function readBody(request: FastifyRequest): unknown {
  const body = request.body;
  if (typeof body !== 'string' || body.trim() === '') {
    throw new ClientError('the request needs a body', 400, 'BAD_USER_INPUT', [
      { path: '/', rule: 'required', message: 'the body is empty' },
    ]);
  }
  return parseChecked(body, formatOf(request.headers['content-type']));
}

/**
 * YAML costs about 4 µs a byte to parse, on the event loop: a 1 MB body would stall the broker
 * for seconds. IVOA requests are a few kilobytes; larger documents can come as JSON.
 */
export const YAML_BODY_LIMIT = 64 * 1024;

/** Flow collections deeper than this are refused before the (recursive) YAML parser sees them. */
const YAML_FLOW_NESTING = MAX_NESTING;

function checkYamlCost(body: string): void {
  if (Buffer.byteLength(body) > YAML_BODY_LIMIT) {
    throw new ClientError(
      `a YAML body may have at most ${YAML_BODY_LIMIT} bytes; send larger documents as JSON`,
      413,
      'BAD_USER_INPUT',
    );
  }
  // Counts brackets anywhere, quoted or not: an over-estimate only for text no request carries.
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > YAML_FLOW_NESTING)
        throw new ClientError(
          `the document nests deeper than ${YAML_FLOW_NESTING} levels`,
          400,
          'BAD_USER_INPUT',
          [{ path: '/', rule: 'max-depth', message: `nests deeper than ${YAML_FLOW_NESTING} levels` }],
        );
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** A body read as JSON or YAML, refused with a 400 when it is neither or nests too deep. */
function parseChecked(body: string, format: DocumentFormat): unknown {
  let document: unknown;
  try {
    // JSON is YAML too, and far cheaper to read: a JSON body sent without a type takes this path.
    if (format === 'yaml') {
      try {
        document = JSON.parse(body);
      } catch {
        checkYamlCost(body);
        document = parseDocument(body, 'yaml');
      }
    } else document = parseDocument(body, format);
  } catch (error) {
    if (error instanceof DocumentSyntaxError) {
      throw new ClientError(error.message, 400, 'BAD_USER_INPUT', [
        { path: '/', rule: 'syntax', message: error.message },
      ]);
    }
    throw error;
  }
  checkNesting(document);
  return document;
}

export function registerRestRoutes(app: FastifyInstance, options: RestOptions) {
  const { broker } = options;
  const baseUrl = (request: FastifyRequest) =>
    options.baseUrl ?? `${request.protocol}://${request.headers.host}`;
  const who = (request: FastifyRequest) => identityOf(request.headers, options.identity);
  const uuidParam = (request: FastifyRequest, what: string) => {
    const { uuid } = request.params as { uuid: string };
    if (!UUID.test(uuid)) throw notFound(what, uuid);
    return uuid;
  };

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ClientError) {
      const messages = error.issues.length
        ? error.issues.map((issue) =>
            message('ERROR', `urn:invalid:${issue.rule}`, '${path}: ${problem}', {
              path: issue.path,
              problem: issue.message,
            }),
          )
        : [
            message('ERROR', `urn:${error.code.toLowerCase().replace(/_/g, '-')}`, '${problem}', {
              problem: error.message,
            }),
          ];
      return send(request, reply, error.status, errorBody(error.status, messages));
    }
    if (error instanceof AuthenticationError) {
      return send(
        request,
        reply,
        401,
        errorBody(401, [message('ERROR', 'urn:unauthenticated', '${problem}', { problem: error.message })]),
      );
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      const problem = (error as Error).message;
      return send(
        request,
        reply,
        status,
        errorBody(status, [message('ERROR', 'urn:bad-request', '${problem}', { problem })]),
      );
    }
    request.log.error({ err: error }, 'request failed');
    return send(
      request,
      reply,
      500,
      errorBody(500, [message('ERROR', 'urn:internal-error', 'The broker failed; the error is logged')]),
    );
  });

  const offers = async (request: FastifyRequest, reply: FastifyReply) => {
    const { offerSet, offers: steps } = await broker.requestOffers(who(request), readBody(request));
    const url = `${baseUrl(request)}/offersets/${offerSet.id}`;
    reply.header('location', url);
    return send(request, reply, 303, offerSetDocument(offerSet, steps, baseUrl(request)));
  };
  app.post('/requests', offers);
  app.post('/offersets', offers);

  app.post('/direct', async (request, reply) => {
    const { offerSet, step } = await broker.executeDirect(who(request), readBody(request));
    if (!step) {
      const failed: Ivoa.ScheduledExecutionSession = {
        kind: KINDS.ScheduledExecutionSession!,
        meta: { messages: offerSet.document.meta?.messages ?? [] },
        phase: 'FAILED',
      } as Ivoa.ScheduledExecutionSession;
      return send(request, reply, 400, failed);
    }
    reply.header('location', `${baseUrl(request)}/sessions/${step.id}`);
    return send(request, reply, 303, stepDocument(step, baseUrl(request)));
  });

  app.get('/offersets/:uuid', async (request, reply) => {
    const id = uuidParam(request, 'offer set');
    const found = await broker.getOfferSet(who(request), id);
    if (!found) throw notFound('offer set', id);
    return send(request, reply, 200, offerSetDocument(found.offerSet, found.offers, baseUrl(request)));
  });

  app.get('/sessions/:uuid', async (request, reply) => {
    const id = uuidParam(request, 'step');
    const step = await broker.getStep(who(request), id);
    if (!step) throw notFound('step', id);
    return send(request, reply, 200, stepDocument(step, baseUrl(request)));
  });

  app.post('/sessions/:uuid', async (request, reply) => {
    const id = uuidParam(request, 'step');
    const step = await broker.update(who(request), id, readBody(request));
    return send(request, reply, 200, stepDocument(step, baseUrl(request)));
  });

  app.post('/callbacks', async (request, reply) => {
    const body = typeof request.body === 'string' ? request.body : '';
    const check = verify(options.callbackSecret, request.headers, body);
    if (!check.ok) throw new AuthenticationError(check.reason);
    const validated = validateComponentCallback(parseChecked(body, 'json'));
    if (!validated.ok) throw invalidDocument(validated.issues);
    if (validated.value.eventId !== check.eventId) {
      throw new ClientError('the event id header and the body disagree', 400, 'BAD_USER_INPUT', [
        { path: '/eventId', rule: 'matches-header', message: 'must equal the x-srcnet-event-id header' },
      ]);
    }
    const outcome = await broker.applyCallback(validated.value, 'worker');
    return reply.code(202).send({ outcome });
  });
}
