import { buildSubgraphSchema } from '@apollo/subgraph';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import {
  AuthenticationError,
  identityOf,
  type Identity,
  type IdentityOptions,
} from '../identity/identity.ts';
import { checkRepresentations, useDocumentLimits } from './limits.ts';

export interface SubgraphOptions<Context extends { identity: Identity }> {
  sdl: string;
  /** Resolvers for `buildSubgraphSchema`, typed by each subgraph's generated types. */
  resolvers: unknown;
  identity: IdentityOptions;
  /** The rest of a request's context: DataLoaders and the like, made afresh per request. */
  context: (req: FastifyRequest) => Omit<Context, 'identity'>;
}

/**
 * Serves a subgraph at `/graphql` of its Fastify app (GET, POST and CORS preflight), with what
 * every subgraph must do alike: entity representations checked at start, internal errors masked,
 * document limits, and the caller taken from the gateway's signed identity header (or refused).
 */
export function serveSubgraph<Context extends { identity: Identity }>(
  app: FastifyInstance,
  options: SubgraphOptions<Context>,
): void {
  const schema = buildSubgraphSchema({ typeDefs: parse(options.sdl), resolvers: options.resolvers as never });
  checkRepresentations(schema);
  const yoga = createYoga<{ req: FastifyRequest; reply: FastifyReply }, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    logging: false,
    maskedErrors: true,
    plugins: [useDocumentLimits()],
    context: ({ req }) => {
      const identity = callerOf(req, options.identity);
      return { ...options.context(req), identity } as Context;
    },
  });
  app.route({
    url: '/graphql',
    method: ['GET', 'POST', 'OPTIONS'],
    handler: async (req, reply) => {
      const response = await yoga.handleNodeRequestAndResponse(req, reply, { req, reply });
      response.headers.forEach((value, key) => reply.header(key, value));
      reply.status(response.status);
      reply.send(response.body);
      return reply;
    },
  });
}

/** The caller of a subgraph request; a missing or forged identity is UNAUTHENTICATED (401) with the reason. */
function callerOf(req: FastifyRequest, options: IdentityOptions): Identity {
  try {
    return identityOf(req.headers, options);
  } catch (error) {
    if (error instanceof AuthenticationError)
      throw new GraphQLError(error.message, {
        extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
      });
    throw error;
  }
}
