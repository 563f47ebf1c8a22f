import { buildSubgraphSchema } from '@apollo/subgraph';
import DataLoader from 'dataloader';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { brokerSubgraphSdl } from '@srcnet/execution-step-schema';
import {
  callerOf,
  checkRepresentations,
  routeGraphQL,
  useDocumentLimits,
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

  routeGraphQL(app, yoga);
}
