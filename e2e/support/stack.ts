/**
 * The stack for end-to-end scenarios: every service as its own process (as `npm start` runs
 * them), on free loopback ports, with its SQLite files and logs in a temporary folder that is
 * kept when a scenario fails (its path is printed), so the logs can be read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createClient, type Client } from 'graphql-ws';
import { launchStack, type LaunchedStack } from '../../gateway/src/stack/launch.ts';
import { PORTS, stackServices, type Ports, type ServiceSpec } from '../../gateway/src/stack/services.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

export async function freePorts(): Promise<Ports> {
  const entries = await Promise.all(
    Object.keys(PORTS).map(async (name) => [name, await freePort()] as const),
  );
  return Object.fromEntries(entries) as Ports;
}

/** Time for a scenario's beforeAll to start the whole stack, with room for a busy machine. */
export const STACK_START_MS = 240_000;

/** Fast but realistic settings: one-second booking blocks, sessions that start in a second. */
export const E2E_ENV: Record<string, string> = {
  LOG_LEVEL: 'info',
  BOOKING_BLOCK_SECONDS: '1',
  SKAHA_EMULATOR_STARTUP_MS: '500',
  SKAHA_EMULATOR_HEADLESS_RUN_MS: '1500',
  // The 1.2 GB example image copies in about 10 s rather than 2.5: each event carries the values of
  // its moment, so on a loaded machine a shorter copy can be over before an event shows it.
  HARBOR_EMULATOR_TIME_SCALE: '0.4',
};

export interface E2EStack {
  ports: Ports;
  dir: string;
  launched: LaunchedStack;
  gatewayUrl(port?: number): string;
  brokerUrl(port?: number): string;
  /** POSTs a GraphQL operation to the gateway as `Bearer <token>`. */
  graphql<T = any>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
    url?: string,
  ): Promise<{ status: number; body: { data?: T; errors?: { message: string; extensions?: any }[] } }>;
  /** A graphql-ws client of the gateway, authenticated through connectionParams. */
  ws(token?: string, url?: string): Client;
  /** Stops everything; the folder is removed unless `keep`. */
  stop(keep?: boolean): Promise<void>;
}

export async function startE2EStack(
  options: {
    name: string;
    customise?: (specs: ServiceSpec[], ports: Ports, dir: string) => ServiceSpec[];
  } = {
    name: 'e2e',
  },
): Promise<E2EStack> {
  const ports = await freePorts();
  const dir = mkdtempSync(join(tmpdir(), `srcnet-${options.name}-`));
  let specs = stackServices(ports, dir);
  if (options.customise) specs = options.customise(specs, ports, dir);
  const launched = await launchStack(specs, {
    output: { logDir: dir },
    env: E2E_ENV,
    healthTimeoutMs: 120_000,
    onExit: (spec, reason) =>
      console.error(`${options.name}: ${spec.name} stopped by itself (${reason}); logs in ${dir}`),
  });
  const clients: Client[] = [];
  const gatewayUrl = (port = ports.gateway) => `http://127.0.0.1:${port}/graphql`;
  return {
    ports,
    dir,
    launched,
    gatewayUrl,
    brokerUrl: (port = ports.broker) => `http://127.0.0.1:${port}`,
    async graphql(query, variables = {}, token, url = gatewayUrl()) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, body: (await response.json()) as never };
    },
    ws(token, url = gatewayUrl()) {
      const client = createClient({
        url: url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: token ? { authorization: `Bearer ${token}` } : {},
        retryAttempts: 0,
      });
      clients.push(client);
      return client;
    },
    async stop(keep = false) {
      await Promise.all(clients.map((client) => client.dispose()));
      await launched.stop();
      if (keep) console.error(`${options.name}: logs and databases kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A subscription's events as they arrive, with a wait for a condition on them. */
export function subscribe<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}) {
  const events: { data?: T; errors?: readonly { message: string; extensions?: any }[] }[] = [];
  let ended: unknown;
  let wake: (() => void) | undefined;
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (event) => {
        events.push(event as never);
        wake?.();
      },
      error: (error) => {
        ended = error ?? 'error';
        wake?.();
      },
      complete: () => {
        ended ??= 'complete';
        wake?.();
      },
    },
  );
  return {
    events,
    stop,
    get ended() {
      return ended;
    },
    /** Resolves once `done(events)` holds; rejects after `timeoutMs` naming what was seen. */
    async until(done: (events: typeof this.events) => boolean, what: string, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(events)) {
        if (ended) throw new Error(`subscription ended (${String(ended)}) before ${what}`);
        if (Date.now() > deadline)
          throw new Error(`no ${what} within ${timeoutMs / 1000} s; events: ${JSON.stringify(events)}`);
        await new Promise<void>((resume) => {
          const timer = setTimeout(resume, 200);
          wake = () => {
            clearTimeout(timer);
            resume();
          };
        });
      }
      return events;
    },
  };
}
