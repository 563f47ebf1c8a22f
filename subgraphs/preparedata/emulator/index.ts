import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { CatalogueContents, SiteConfig } from './catalogue.ts';
import { Catalogue, DEFAULT_SITE, defaultCatalogue, defaultSites } from './catalogue.ts';
import type { CallbackOptions, CallbackStats } from './callbacks/notifier.ts';
import { CallbackNotifier, DEFAULT_CALLBACK_OPTIONS } from './callbacks/notifier.ts';
import type { FaultKind, Faults } from './faults/faults.ts';
import { FaultInjector } from './faults/faults.ts';
import type { RestartOptions, ServerContext } from './http/server.ts';
import { buildServer } from './http/server.ts';
import { seededRandom } from '@srcnet/service-kit';
import type { StagingSnapshot } from './staging/engine.ts';
import { StagingEngine } from './staging/engine.ts';
import type { StorageAreaConfig } from './staging/storage.ts';
import { StagingStore } from './staging/storage.ts';
import type { RequestCounts } from './stats.ts';
import { RequestStats } from './stats.ts';

export type { CatalogueContents, DidEntry, Replica, SiteConfig, UrlEntry } from './catalogue.ts';
export { Catalogue, defaultCatalogue, defaultSites } from './catalogue.ts';
export type { CallbackOptions, CallbackStats } from './callbacks/notifier.ts';
export type { ApiFaults, CallbackFaults, Faults, FaultSwitch } from './faults/faults.ts';
export { faultsFromEnv } from './faults/faults.ts';
export type { RestartOptions } from './http/server.ts';
export type { RestartPolicy, StagingSnapshot } from './staging/engine.ts';
export type { StorageAreaConfig } from './staging/storage.ts';

const GiB = 1024 ** 3;

export const DEFAULT_STORAGE_AREAS: StorageAreaConfig[] = [
  { id: 'spsrc-user-area', capacityBytes: 1024 * GiB },
  { id: 'spsrc-scratch', capacityBytes: 10 * GiB },
];

export interface PrepareDataEmulatorOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where staged files appear, one folder per storage area; a temporary folder when absent. */
  dataRoot?: string;
  storageAreas?: StorageAreaConfig[];
  /** Replaces the default catalogue (example-009/011 DIDs and URLs). */
  catalogue?: Partial<CatalogueContents>;
  /** Merged over the default sites. */
  sites?: Record<string, SiteConfig>;
  /** For sites named nowhere else (e.g. the host of an unlisted URL). */
  defaultSite?: SiteConfig;
  /** Simulated transfer seconds per real second (lifetimes are not scaled). Default 1. */
  timeScale?: number;
  /** Spread of transfer speeds, 0..1. Default 0.2. */
  jitter?: number;
  /** Chance of a transfer error per transfer, 0..1. Default 0. */
  transferErrorRate?: number;
  /** Seeds transfer jitter, transfer errors and faults. Default 1. */
  seed?: number;
  /** Clock resolution of transfers and expiry. Default 50 ms. */
  tickMs?: number;
  /** Bearer tokens accepted besides `dev:<user>`, each to the user it stands for. */
  tokens?: Record<string, string>;
  /** Accept `Bearer dev:<user>` (default true). */
  allowDevTokens?: boolean;
  callbacks?: Partial<CallbackOptions>;
  faults?: Faults;
  logger?: Logger;
}

export interface EmulatorStats {
  requests: RequestCounts;
  callbacks: CallbackStats & { dropped: number; duplicated: number; reordered: number; delayed: number };
  /** The API faults fired; the callback ones are counted under `callbacks`. */
  faults: Record<Exclude<FaultKind, 'drop' | 'duplicate' | 'reorder' | 'delay'>, number>;
  staging: StagingSnapshot;
}

export interface PrepareDataEmulator {
  url: string;
  port: number;
  dataRoot: string;
  /** Live: entries added or removed take effect for later submissions. */
  catalogue: Catalogue;
  stats(): EmulatorStats;
  resetStats(): void;
  /** Forgets what a real service keeps only in memory (see docs/preparedata-callbacks.md). */
  restart(options?: RestartOptions): Promise<void>;
  /** Replaces all fault switches; `{}` turns faults off. */
  setFaults(faults: Faults): void;
  close(): Promise<void>;
}

function authenticator(tokens: Record<string, string>, allowDev: boolean) {
  return (authorization: string | undefined): string | undefined => {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) return undefined;
    const token = match[1]!;
    const configured = tokens[token];
    if (configured) return configured;
    if (allowDev && token.startsWith('dev:') && token.length > 4) return token.slice(4);
    return undefined;
  };
}

export async function startPrepareDataEmulator(
  options: PrepareDataEmulatorOptions = {},
): Promise<PrepareDataEmulator> {
  const host = options.host ?? '127.0.0.1';
  const ownsDataRoot = options.dataRoot === undefined;
  const dataRoot = options.dataRoot ?? mkdtempSync(path.join(os.tmpdir(), 'preparedata-emulator-'));
  const seed = options.seed ?? 1;
  const catalogue = new Catalogue(options.catalogue ?? defaultCatalogue());
  const faults = new FaultInjector(seededRandom(seed + 1), options.faults);
  const notifier = new CallbackNotifier(
    { ...DEFAULT_CALLBACK_OPTIONS, ...options.callbacks },
    faults,
    seededRandom(seed + 2),
  );
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0)) throw new RangeError(`timeScale must be a positive number (got ${timeScale})`);
  const engine = new StagingEngine({
    catalogue,
    store: new StagingStore(dataRoot),
    areas: options.storageAreas ?? DEFAULT_STORAGE_AREAS,
    sites: { ...defaultSites(), ...options.sites },
    defaultSite: options.defaultSite ?? DEFAULT_SITE,
    timeScale,
    jitter: options.jitter ?? 0.2,
    transferErrorRate: options.transferErrorRate ?? 0,
    random: seededRandom(seed),
    tickMs: options.tickMs ?? 50,
    onChange: (job, type) => notifier.notify(job, type),
  });
  const requests = new RequestStats();

  const stats = (): EmulatorStats => {
    const { drop, duplicate, reorder, delay, ...api } = faults.fired;
    return {
      requests: requests.snapshot(),
      callbacks: {
        ...notifier.stats,
        dropped: drop,
        duplicated: duplicate,
        reordered: reorder,
        delayed: delay,
      },
      faults: api,
      staging: engine.snapshot(),
    };
  };
  const resetStats = () => {
    requests.reset();
    notifier.resetStats();
    faults.resetCounts();
  };

  let app: FastifyInstance;
  let port = options.port ?? 0;
  const restart = async (restartOptions: RestartOptions = {}) => {
    const policy = restartOptions.inFlight ?? 'restart';
    const downtimeMs = restartOptions.downtimeMs ?? 0;
    notifier.forgetPending();
    if (downtimeMs > 0) {
      engine.suspend();
      await app.close();
      await sleep(downtimeMs);
      engine.restart(policy);
      app = buildServer(context);
      await app.listen({ host, port });
    } else engine.restart(policy);
  };

  const context: ServerContext = {
    engine,
    notifier,
    faults,
    requests,
    catalogue,
    idempotency: new Map(),
    authenticate: authenticator(options.tokens ?? {}, options.allowDevTokens ?? true),
    admin: { stats, resetStats, restart, setFaults: (f) => faults.set(f), getFaults: () => faults.get() },
    ...(options.logger ? { logger: options.logger } : {}),
  };

  app = buildServer(context);
  await app.listen({ host, port });
  const address = app.server.address();
  if (address && typeof address === 'object') port = address.port;

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    dataRoot,
    catalogue,
    stats,
    resetStats,
    restart,
    setFaults: (f) => faults.set(f),
    async close() {
      engine.close();
      notifier.close();
      await app.close();
      if (ownsDataRoot) rmSync(dataRoot, { recursive: true, force: true });
    },
  };
}
