import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { unifiedGraphHandler } from '@graphql-hive/router-runtime';
import { createGatewayRuntime, getGraphQLWSOptions, type GatewayPlugin } from '@graphql-hive/gateway-runtime';
import type { ExecutionResult } from 'graphql';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import type { Logger as PinoLogger } from 'pino';
import { WebSocketServer } from 'ws';
import type { GatewayConfig } from './config.ts';
import { startCatchUp } from './fanout/catch-up.ts';
import { brokerFeed, redisFeed, type ChangeFeed } from './fanout/feed.ts';
import { Fanout, type Execute } from './fanout/hub.ts';
import { useStepFanout } from './fanout/plugin.ts';
import { createAuthenticate } from './identity/authenticate.ts';
import { useIdentity, type IdentityContext } from './identity/plugin.ts';
import { useTracing } from './tracing/plugin.ts';
import { limitPlugins } from './limits/limits.ts';
import { gatewayLogger } from './logging/logger.ts';
import { createMetrics, useMetrics, type GatewayMetrics } from './metrics/metrics.ts';
import { graphiqlOptions } from './sandbox/graphiql.ts';

export interface StartOptions {
  /** The log level of the gateway and its runtime, or false for no log (tests). */
  logging?: 'debug' | 'info' | 'warn' | 'error' | false;
  /** Where the log lines go (tests read them); by default JSON lines on standard output. */
  logger?: PinoLogger;
  /** Extra plugins, after the gateway's own (benchmarks try options this way). */
  plugins?: GatewayPlugin[];
  /**
   * false: `executionStepChanged` the runtime's stock way, one upstream subscription per client,
   * and no change feed; only bench/push-latency's baseline wants this.
   */
  fanout?: boolean;
}

export interface RunningGateway {
  /** http://host:port/graphql */
  url: string;
  /** ws://host:port/graphql */
  wsUrl: string;
  server: Server;
  metrics: GatewayMetrics;
  fanout: Fanout;
  close(): Promise<void>;
}

/**
 * The gateway: the Hive Gateway runtime serving the supergraph on node:http at /graphql (queries
 * and mutations over HTTP, subscriptions over graphql-ws on the same path and over SSE), GraphiQL
 * on a browser GET when the sandbox is on, /healthz, /readyz and /metrics. It listens only once
 * the supergraph is loaded, since a subscription that arrives earlier would find no schema.
 */
export async function startGateway(
  config: GatewayConfig,
  options: StartOptions = {},
): Promise<RunningGateway> {
  const metrics = createMetrics();
  const log =
    options.logging === false ? undefined : gatewayLogger(options.logging ?? 'info', options.logger);
  // Bound late: the fan-out runs its fetches through the runtime, which needs the fan-out's plugin.
  let execute: Execute = async () => ({ errors: [] });
  const fanout = new Fanout({
    execute: (document, variables, identity) => execute(document, variables, identity),
    queueLimit: config.subscriberQueueLimit,
    observer: metrics.fanout,
    onError: (error) => log?.error({ error }, 'fan-out failed'),
  });

  const runtime = createGatewayRuntime<IdentityContext>({
    supergraph: config.supergraph,
    // Hive Router's Rust query planner and executor: about half the CPU per query of the default
    // JavaScript runtime here (bench/gateway-throughput).
    unifiedGraphHandler,
    transports: { http: import('@graphql-mesh/transport-http') },
    transportEntries: Object.fromEntries(
      Object.entries(config.subgraphUrls).map(([name, location]) => [name, { location }]),
    ),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/healthz',
    readinessCheckEndpoint: '/readyz',
    landingPage: false,
    graphiql: config.sandbox ? graphiqlOptions(config.auth.mode === 'dev') : false,
    // GraphiQL served from this package rather than from a CDN: sites may not reach the internet.
    renderGraphiQL,
    ...(config.sandbox ? {} : { disableIntrospection: {} }),
    maskedErrors: true,
    logging: log ?? false,
    plugins: () => [
      useTracing(),
      useMetrics(metrics),
      useIdentity({ authenticate: createAuthenticate(config.auth), gatewaySecret: config.gatewaySecret }),
      ...limitPlugins(config.limits),
      ...(config.sandbox ? [] : [blockFieldSuggestionsPlugin() as GatewayPlugin]),
      ...(options.fanout === false ? [] : [useStepFanout(fanout)]),
      ...(options.plugins ?? []),
    ],
  });
  execute = async (document, variables, identity) => {
    const {
      execute: run,
      schema,
      contextFactory,
    } = runtime.getEnveloped({
      identity,
      internal: true,
      headers: {},
    } as never);
    const contextValue = await contextFactory();
    return (await run({ schema, document, variableValues: variables, contextValue })) as ExecutionResult;
  };

  await runtime.getSchema();
  const feed: ChangeFeed = config.redisUrl
    ? redisFeed(config.redisUrl)
    : brokerFeed({
        url: config.subgraphUrls.broker!,
        gatewaySecret: config.gatewaySecret,
        onStatus: (connected, error) => {
          metrics.feedConnected.set(connected ? 1 : 0);
          if (error) log?.warn({ error }, 'change feed from the broker failed; reconnecting');
        },
      });
  const catchUp =
    options.fanout === false
      ? undefined
      : startCatchUp({
          execute: (document, variables, identity) => execute(document, variables, identity),
          fanout,
          intervalMs: config.catchUpSeconds * 1000,
          onError: (error) => log?.warn({ error }, 'catch-up failed'),
        });
  if (catchUp)
    await feed.start(
      (stepId) => fanout.onChange(stepId),
      () => {
        log?.warn('change feed: reconnected; catching up on changes it may have missed');
        catchUp.soon();
      },
    );
  if (config.redisUrl) metrics.feedConnected.set(1);

  const server = createServer(runtime);
  const sockets = new WebSocketServer({ server, path: '/graphql' });
  const wsServer = useServer(
    getGraphQLWSOptions<IdentityContext, Extra>(runtime, (context) => ({
      req: context.extra.request,
      socket: context.extra.socket,
    })),
    sockets,
  );
  await new Promise<void>((listening, failed) => {
    server.once('error', failed);
    server.listen(config.port, config.host, listening);
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  return {
    url: `http://${host}:${port}/graphql`,
    wsUrl: `ws://${host}:${port}/graphql`,
    server,
    metrics,
    fanout,
    async close() {
      await catchUp?.stop();
      await feed.close();
      await wsServer.dispose();
      await new Promise((closed) => sockets.close(closed));
      server.closeAllConnections();
      await new Promise((closed) => server.close(closed));
      await runtime.dispose();
    },
  };
}
