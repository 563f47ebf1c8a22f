import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError } from 'graphql';
import type { YogaServerInstance } from 'graphql-yoga';
import {
  AuthenticationError,
  identityOf,
  type Identity,
  type IdentityOptions,
} from '../identity/identity.ts';

/** Serves a subgraph's Yoga at `/graphql` of its Fastify app (GET, POST and CORS preflight). */
export function routeGraphQL<Context extends object>(
  app: FastifyInstance,
  yoga: YogaServerInstance<{ req: FastifyRequest; reply: FastifyReply }, Context>,
): void {
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
export function callerOf(req: FastifyRequest, options: IdentityOptions): Identity {
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
