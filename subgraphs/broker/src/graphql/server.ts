import DataLoader from 'dataloader';
import type { FastifyInstance } from 'fastify';
import { brokerSubgraphSdl } from '@srcnet/execution-step-schema';
import { serveSubgraph, type IdentityOptions, type StepPubSub } from '@srcnet/service-kit';
import { loaderById } from '../steps/loader.ts';
import type { Broker } from '../steps/service.ts';
import type { BrokerContext } from './context.ts';
import { resolvers } from './resolvers.ts';

/** The broker subgraph at /graphql: queries, mutations and SSE subscriptions, for the gateway. */
export function registerGraphQL(
  app: FastifyInstance,
  options: { broker: Broker; pubsub: StepPubSub; identity: IdentityOptions; baseUrl?: string },
) {
  const { broker } = options;
  serveSubgraph<BrokerContext>(app, {
    sdl: brokerSubgraphSdl(),
    resolvers: resolvers(options.pubsub),
    identity: options.identity,
    context: (req) => ({
      broker,
      baseUrl: options.baseUrl ?? `${req.protocol}://${req.headers.host}`,
      steps: loaderById((ids) => broker.steps(ids)),
      offerSets: loaderById((ids) => broker.offerSets(ids)),
      history: new DataLoader(async (ids: readonly string[]) => {
        const byStep = await broker.history(ids);
        return ids.map((id) => byStep.get(id) ?? []);
      }),
    }),
  });
}
