/**
 * One process of gateway-throughput, by its first argument:
 * - `subgraphs USERS`: the stand-in broker (60 steps of each user bench-0 … bench-(USERS-1)) and
 *   worker;
 * - `ours BROKER_URL SKAHA_URL`: this project's gateway, as `npm start` configures it in production
 *   (identity, limits, masked errors) but with no per-identity rate limit, which the load would trip;
 * - `apollo BROKER_URL SKAHA_URL`: @apollo/gateway on @apollo/server, taking the caller from a dev
 *   token and signing it for the subgraphs, which require that, reusing each signature for a minute
 *   as ours does.
 * Each sends {type: 'ready', …} over IPC once it listens, and answers {type: 'usage'}.
 */
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { createPubSub, DEV_SECRET, signIdentity } from '@srcnet/service-kit';
import { composeSupergraph } from '../../gateway/src/compose/compose.ts';
import { loadConfig } from '../../gateway/src/config.ts';
import { startGateway } from '../../gateway/src/server.ts';
import {
  BROKER_SDL,
  SKAHA_SDL,
  startStandInBroker,
  startStandInWorker,
} from '../../gateway/test/support/standins.ts';

const [role, ...args] = process.argv.slice(2);
const [brokerUrl, skahaUrl] = args;
const send = (message: Record<string, unknown>) => process.send!(message);
/** Answers {type: 'usage'} with this process's RSS and CPU time so far, and `extra`. */
const answerUsage = (extra: () => Record<string, number> = () => ({})) =>
  process.on('message', (message: { type: string }) => {
    if (message.type !== 'usage') return;
    const { user, system } = process.cpuUsage();
    send({ type: 'usage', rss: process.memoryUsage().rss, cpuMs: (user + system) / 1000, ...extra() });
  });
const supergraph = () =>
  composeSupergraph([
    { name: 'broker', url: brokerUrl!, sdl: BROKER_SDL },
    { name: 'skaha', url: skahaUrl!, sdl: SKAHA_SDL },
  ]);

if (role === 'subgraphs') {
  const broker = await startStandInBroker({ pubsub: createPubSub() });
  const worker = await startStandInWorker({});
  for (let user = 0; user < Number(args[0]); user += 1)
    for (let i = 0; i < 60; i += 1) worker.status.set(broker.create(`bench-${user}`).id, `status-${i}`);
  answerUsage(() => ({ skahaRequests: worker.stats.requests }));
  send({ type: 'ready', brokerUrl: broker.url, skahaUrl: worker.url });
} else if (role === 'ours') {
  const gateway = await startGateway(
    {
      ...loadConfig({ NODE_ENV: 'production', GATEWAY_PORT: '0', RATE_LIMIT_PER_MINUTE: '0' }),
      supergraph: supergraph(),
      subgraphUrls: { broker: brokerUrl!, skaha: skahaUrl! },
    },
    { logging: false },
  );
  answerUsage();
  send({ type: 'ready', url: gateway.url });
} else if (role === 'apollo') {
  const signed = new Map<string, { headers: Record<string, string>; at: number }>();
  const sign = (user: string) => {
    const now = Date.now();
    let entry = signed.get(user);
    if (!entry || now - entry.at > 60_000)
      signed.set(user, (entry = { headers: signIdentity(DEV_SECRET, { user, roles: [] }, now), at: now }));
    return entry.headers;
  };
  const gateway = new ApolloGateway({
    supergraphSdl: supergraph(),
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource<{ user: string }>({
        url,
        willSendRequest({ request, context }) {
          for (const [name, value] of Object.entries(sign(context.user)))
            request.http?.headers.set(name, value);
        },
      }),
  });
  const server = new ApolloServer<{ user: string }>({ gateway });
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => ({
      user: /^Bearer dev:(.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? 'dev',
    }),
  });
  answerUsage();
  send({ type: 'ready', url });
} else {
  throw new Error(`unknown role ${role}`);
}
