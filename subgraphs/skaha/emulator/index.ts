import { randomInt, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { DeliveryStats } from './callbacks/notifier.ts';
import { CallbackNotifier, DEFAULT_DELIVERY_OPTIONS } from './callbacks/notifier.ts';
import { CallbackPublisher } from './callbacks/publisher.ts';
import { CallbackRegistry } from './callbacks/registry.ts';
import type { SkahaEmulatorOptions } from './config.ts';
import { resolveTiming } from './config.ts';
import type { FaultKind, Faults } from './faults/faults.ts';
import { FaultInjector } from './faults/faults.ts';
import { DEFAULT_REGISTRY_HOSTS, defaultContext, defaultImages } from './fixtures.ts';
import type { RestartOptions, ServerContext } from './http/server.ts';
import { buildServer } from './http/server.ts';
import { seededRandom } from '@srcnet/service-kit';
import type { RequestCounts } from './requests.ts';
import { RequestCounter } from './requests.ts';
import type { Capacity, EmulatedStatus } from './sessions/engine.ts';
import { SessionEngine } from './sessions/engine.ts';

export type { SkahaEmulatorOptions } from './config.ts';
export { optionsFromEnv } from './config.ts';
export type { DeliveryOptions, DeliveryStats } from './callbacks/notifier.ts';
export type { ApiFaults, CallbackFaults, FaultKind, Faults, FaultSwitch } from './faults/faults.ts';
export { faultsFromEnv } from './faults/faults.ts';
export { defaultContext, defaultImages } from './fixtures.ts';
export type { RestartOptions } from './http/server.ts';
export type { Operation } from './operations.ts';
export type { RequestCounts } from './requests.ts';
export type { ImageRule, TypeTiming, WorkloadType } from './sessions/engine.ts';

export interface EmulatorStats {
  requests: RequestCounts;
  /** How often each fault fired. */
  faults: Record<FaultKind, number>;
  callbacks: DeliveryStats & { events: number; pending: number; registrations: number };
  sessions: { byStatus: Partial<Record<EmulatedStatus, number>>; used: Capacity; cluster: Capacity };
}

export interface SkahaEmulator {
  /** The server root; the API is at `${url}/skaha/v1`. */
  url: string;
  apiUrl: string;
  port: number;
  stats(): EmulatorStats;
  /** Zeroes request, fault and delivery counts; sessions are untouched. */
  resetStats(): void;
  /**
   * What a process restart does: queued and retrying callbacks are lost, user-wide callback
   * registrations too unless persisted; sessions survive (Kubernetes keeps the Jobs), and so
   * do per-session registrations and sequence numbers (Job annotations). Status changes made
   * while down are announced on the way back up.
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Replaces all fault switches; `{}` turns faults off. */
  setFaults(faults: Faults): void;
  close(): Promise<void>;
}

function authenticator(tokens: Record<string, string>, allowDev: boolean) {
  return (authorization: string | undefined): string | undefined => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const token = match[1]!;
    if (Object.hasOwn(tokens, token)) return tokens[token];
    const dev = /^dev:([A-Za-z0-9._@-]{1,64})$/.exec(token);
    return allowDev && dev ? dev[1] : undefined;
  };
}

/** Starts a Skaha emulator (and its callback extension) listening on `host:port`. */
export async function startSkahaEmulator(options: SkahaEmulatorOptions = {}): Promise<SkahaEmulator> {
  const host = options.host ?? '127.0.0.1';
  const seed = options.seed ?? 1;
  const context = options.context ?? defaultContext();
  const cluster: Capacity = { cores: 64, ramGB: 256, gpus: 8, ...options.cluster };
  const views = {
    sessionsHost: options.sessionsHost ?? 'sessions.canfar.emulator',
    homeDir: options.homeDir ?? '/arc/home',
  };
  const failureRate = options.failureRate ?? 0;
  if (!(failureRate >= 0 && failureRate <= 1))
    throw new RangeError(`failureRate must be from 0 to 1 (got ${failureRate})`);
  const tickMs = options.tickMs ?? 25;
  if (!(tickMs > 0)) throw new RangeError(`tickMs must be positive (got ${tickMs})`);

  const faults = new FaultInjector(seededRandom(seed + 1), options.faults);
  const registry = new CallbackRegistry(options.callbacks?.persistUserRegistrations ?? false);
  const notifier = new CallbackNotifier(
    { ...DEFAULT_DELIVERY_OPTIONS, ...options.callbacks },
    faults,
    seededRandom(seed + 2),
    (registration) => registry.remove(registration.id),
    options.logger,
  );
  const publisher = new CallbackPublisher(registry, notifier, views);
  const engine = new SessionEngine(
    {
      context,
      cluster,
      flexRequests: { headless: { cores: 1, ramGB: 4 }, ...options.flexRequests },
      timing: resolveTiming(options.timing),
      imageRules: options.imageRules ?? [],
      failureRate,
      failAfterMs: options.failAfterMs ?? 2000,
      failureMessage: options.failureMessage ?? 'Error: the container exited with code 1',
      expirySeconds: options.expirySeconds ?? 345_600,
      terminatingMs: options.terminatingMs ?? 1000,
    },
    // Ids must not repeat across runs: a worker may still hold ids from the previous one.
    () => randomInt(0, 2 ** 32) / 2 ** 32,
    seededRandom(seed + 3),
    (change) => publisher.onChange(change),
  );
  const requests = new RequestCounter();
  const tick = setInterval(() => engine.advance(Date.now()), tickMs);
  tick.unref();

  const stats = (): EmulatorStats => {
    const byStatus: Partial<Record<EmulatedStatus, number>> = {};
    for (const record of engine.all()) byStatus[record.status] = (byStatus[record.status] ?? 0) + 1;
    return {
      requests: requests.snapshot(),
      faults: { ...faults.fired },
      callbacks: {
        ...notifier.stats,
        events: publisher.events,
        pending: notifier.pending,
        registrations: registry.size,
      },
      sessions: { byStatus, used: engine.used(), cluster },
    };
  };
  const resetStats = () => {
    requests.reset();
    faults.resetCounts();
    notifier.resetStats();
    publisher.events = 0;
  };

  let app: FastifyInstance;
  let port = options.port ?? 0;
  const restart = async ({ downtimeMs = 0 }: RestartOptions = {}) => {
    publisher.up = false;
    notifier.forget();
    registry.forgetVolatile();
    if (downtimeMs > 0) {
      await app.close();
      await sleep(downtimeMs);
      app = buildServer(serverContext);
      await app.listen({ host, port });
    }
    publisher.instance = randomUUID();
    publisher.up = true;
    const now = Date.now();
    engine.advance(now);
    publisher.catchUp(engine.all(), now);
  };

  const serverContext: ServerContext = {
    engine,
    registry,
    publisher,
    faults,
    requests,
    rules: {
      context,
      registryHosts: options.registryHosts ?? DEFAULT_REGISTRY_HOSTS,
      images: options.images ?? defaultImages(),
    },
    context,
    cluster,
    views,
    authenticate: authenticator(options.tokens ?? {}, options.allowDevTokens ?? true),
    deniedUsers: new Set(options.deniedUsers ?? []),
    admin: {
      stats,
      resetStats,
      restart,
      setFaults: (f) => faults.set(f),
      getFaults: () => faults.get(),
    },
    ...(options.logger ? { logger: options.logger } : {}),
  };

  app = buildServer(serverContext);
  await app.listen({ host, port });
  const address = app.server.address();
  if (address && typeof address === 'object') port = address.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url,
    apiUrl: `${url}/skaha/v1`,
    port,
    stats,
    resetStats,
    restart,
    setFaults: (f) => faults.set(f),
    async close() {
      clearInterval(tick);
      notifier.close();
      await app.close();
    },
  };
}
