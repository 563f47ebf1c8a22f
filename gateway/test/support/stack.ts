import WebSocket from 'ws';
import { createClient, type Client } from 'graphql-ws';
import { createPubSub, DEV_SECRET, type AuthMode } from '@srcnet/service-kit';
import { composeSupergraph } from '../../src/compose/compose.ts';
import { loadConfig } from '../../src/config.ts';
import { startGateway } from '../../src/server.ts';
import { BROKER_SDL, SKAHA_SDL, startStandInBroker, startStandInWorker } from './standins.ts';

/**
 * A gateway over the stand-in broker and worker, on random ports. `env` is the gateway's
 * environment (AUTH_MODE, limits …); the stand-ins check identities in `subgraphMode`.
 */
export async function testStack(
  options: { env?: Record<string, string>; subgraphMode?: AuthMode; redisUrl?: string } = {},
) {
  const gatewaySecret = options.env?.GATEWAY_SECRET ?? DEV_SECRET;
  const pubsub = createPubSub({ redisUrl: options.redisUrl });
  const standIn = { mode: options.subgraphMode ?? 'dev', gatewaySecret };
  const broker = await startStandInBroker({ ...standIn, pubsub });
  const worker = await startStandInWorker(standIn);
  const supergraph = composeSupergraph([
    { name: 'broker', url: broker.url, sdl: BROKER_SDL },
    { name: 'skaha', url: worker.url, sdl: SKAHA_SDL },
  ]);
  const config = {
    ...loadConfig({ GATEWAY_PORT: '0', ...options.env }),
    supergraph,
    subgraphUrls: { broker: broker.url, skaha: worker.url },
  };
  const gateway = await startGateway(config, { logging: false });
  const sockets: Client[] = [];
  return {
    broker,
    worker,
    gateway,
    config,
    /** A graphql-ws client that authenticates with `token` in connectionParams. */
    ws(token?: string) {
      const client = createClient({
        url: gateway.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: token ? { authorization: `Bearer ${token}` } : {},
        retryAttempts: 0,
      });
      sockets.push(client);
      return client;
    },
    /** POSTs an operation; answers the status and the parsed body. */
    async post(query: string, variables: Record<string, unknown> = {}, token?: string) {
      const response = await fetch(gateway.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, body: (await response.json()) as { data?: any; errors: any[] } };
    },
    async close() {
      await Promise.all(sockets.map((socket) => socket.dispose()));
      await gateway.close();
      await broker.close();
      await worker.close();
      await pubsub.dispose();
    },
  };
}

/** Collects a subscription's events until `count` have arrived (or the timeout passes). */
export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const events: { data?: T; errors?: readonly { message: string; extensions?: any }[] }[] = [];
  let waiters: (() => void)[] = [];
  let ended: unknown;
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (event) => {
        events.push(event as never);
        waiters.forEach((wake) => wake());
      },
      error: (error) => {
        ended = error ?? 'error';
        waiters.forEach((wake) => wake());
      },
      complete: () => {
        ended ??= 'complete';
        waiters.forEach((wake) => wake());
      },
    },
  );
  return {
    events,
    stop,
    get ended() {
      return ended;
    },
    async until(count: number, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count && !ended && Date.now() < deadline) {
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, Math.max(1, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(timer);
            wake();
          });
        });
        waiters = [];
      }
      return events;
    },
  };
}
