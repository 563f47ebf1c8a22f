import { buildSubgraphSchema } from '@apollo/subgraph';
import DataLoader from 'dataloader';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GraphQLError, parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { brokerSubgraphSdl } from '@srcnet/execution-step-schema';
import {
  AuthenticationError,
  checkRepresentations,
  identityOf,
  useDocumentLimits,
  type Identity,
  type IdentityOptions,
  type StepPubSub,
} from '@srcnet/service-kit';
import { loaderById } from '../steps/loader.ts';
import type { Broker } from '../steps/service.ts';
import type { BrokerContext } from './context.ts';
import { resolvers } from './resolvers.ts';

/** The broker subgraph at /graphql: queries, mutations and SSE subscriptions, for the gateway. */
export function registerGraphQL(
  app: FastifyInstance,
  options: { broker: Broker; pubsub: StepPubSub; identity: IdentityOptions; baseUrl?: string },
) {
  const schema = buildSubgraphSchema({
    typeDefs: parse(brokerSubgraphSdl()),
    resolvers: resolvers(options.pubsub) as never,
  });
  checkRepresentations(schema);
  const { broker } = options;
  const yoga = createYoga<{ req: FastifyRequest; reply: FastifyReply }, BrokerContext>({
    schema,
    graphqlEndpoint: '/graphql',
    logging: false,
    maskedErrors: true,
    plugins: [useDocumentLimits()],
    context: ({ req }) => {
      return {
        identity: callerOf(req, options.identity),
        broker,
        baseUrl: options.baseUrl ?? `${req.protocol}://${req.headers.host}`,
        steps: loaderById((ids) => broker.steps(ids)),
        offerSets: loaderById((ids) => broker.offerSets(ids)),
        history: new DataLoader(async (ids: readonly string[]) => {
          const byStep = await broker.history(ids);
          return ids.map((id) => byStep.get(id) ?? []);
        }),
      };
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

function callerOf(req: FastifyRequest, options: IdentityOptions): Identity {
  try {
    return identityOf(req.headers, options);
  } catch (error) {
    if (error instanceof AuthenticationError) {
      throw new GraphQLError(error.message, {
        extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
      });
    }
    throw error;
  }
}
