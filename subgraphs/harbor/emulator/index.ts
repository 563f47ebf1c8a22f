/**
 * A Harbor v2.0 emulator speaking real HTTP: the `/api/v2.0` subset the image worker uses, the
 * OCI registry at `/v2/`, proxy caches, pull-mode replication, webhooks, robots, and fault
 * switches. Point a worker at its URL exactly as at a real Harbor.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { HarborEmulatorOptions, ImageFixture } from './config.ts';
import { HarborCore } from './core.ts';
import type { FaultKind, Faults } from './faults/faults.ts';
import type { RequestCounts } from './http/requests.ts';
import type { RestartOptions } from './http/server.ts';
import { buildServer } from './http/server.ts';
import type { ProxyStats } from './proxycache/cache.ts';
import type { UpstreamImage } from './registry/upstreams.ts';
import type { ReplicationStats } from './replication/engine.ts';
import type { DeliveryStats } from './webhooks/notifier.ts';

export type { HarborEmulatorOptions, ImageFixture, ProjectFixture, Timing } from './config.ts';
export { optionsFromEnv, DEFAULT_TIMING } from './config.ts';
export type { ImageSpec } from './artifacts/content.ts';
export type { ApiFaults, FaultKind, Faults, FaultSwitch, WebhookFaults } from './faults/faults.ts';
export { faultsFromEnv } from './faults/faults.ts';
export type { RequestCounts } from './http/requests.ts';
export type { RestartOptions } from './http/server.ts';
export { defaultOptions, DEFAULT_ADMIN, IVOA_EXAMPLE_IMAGES } from './fixtures.ts';

export interface EmulatorStats {
  requests: RequestCounts;
  /** How often each fault fired. */
  faults: Record<FaultKind, number>;
  webhooks: DeliveryStats & { events: number; pending: number };
  replication: ReplicationStats;
  proxyCache: ProxyStats;
}

/** What an added image is served as. */
export interface AddedImage {
  /** Digest of the top-level manifest (the index for a multi-arch image). */
  digest: string;
  /** Digest of each platform manifest, for an index. */
  platformDigests: string[];
  /** Harbor's size of the top-level artifact once stored. */
  size: number;
}

export interface HarborEmulator {
  /** The Harbor root: API at `${url}/api/v2.0`, registry at `${url}/v2/`. */
  url: string;
  port: number;
  stats(): EmulatorStats;
  /** Zeroes request, fault, webhook and proxy counters; stored state is untouched. */
  resetStats(): void;
  /**
   * What a Harbor restart forgets: queued and retrying webhook deliveries, background
   * proxy-cache copies, upload sessions; running replication tasks end Error (their executions
   * Failed, announced by webhook once back). Projects, artifacts, policies and robots persist.
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Replaces every fault switch; `{}` turns faults off. */
  setFaults(faults: Faults): void;
  /** Makes an image available at a made-up remote registry, e.g. `ghcr.io/ivoa/x:1.0`. */
  addUpstreamImage(fixture: ImageFixture): AddedImage;
  /** Stores an image in a local project, e.g. `library/ubuntu:22.04` (created private if missing). */
  addLocalImage(fixture: ImageFixture): AddedImage;
  close(): Promise<void>;
}

function describe(image: UpstreamImage): AddedImage {
  const bytes = (m: { bytes: Buffer }) => m.bytes.byteLength;
  const blobSize = new Map(image.blobs.map((b) => [b.digest, b.size]));
  const imageSize = (m: UpstreamImage['top']) =>
    m.manifest.kind === 'image'
      ? bytes(m) +
        (blobSize.get(m.manifest.config.digest) ?? 0) +
        m.manifest.layers.reduce((s, l) => s + l.size, 0)
      : 0;
  const size =
    image.top.manifest.kind === 'image'
      ? imageSize(image.top)
      : bytes(image.top) + image.children.reduce((s, c) => s + imageSize(c), 0);
  return { digest: image.top.digest, platformDigests: image.children.map((c) => c.digest), size };
}

/** Starts an emulator; with no options, an empty Harbor with user admin / Harbor12345. */
export async function startHarborEmulator(options: HarborEmulatorOptions = {}): Promise<HarborEmulator> {
  const host = options.host ?? '127.0.0.1';
  const core = new HarborCore(options);
  core.seed();

  const stats = (): EmulatorStats => ({
    requests: core.requests.snapshot(),
    faults: { ...core.faults.fired },
    webhooks: { ...core.notifier.stats, events: core.webhooks.events, pending: core.notifier.pending },
    replication: core.replication.stats(),
    proxyCache: core.proxy.stats(),
  });
  const resetStats = () => {
    core.requests.reset();
    core.faults.resetCounts();
    core.notifier.resetStats();
    core.webhooks.events = 0;
    core.proxy.resetStats();
  };

  let app: FastifyInstance;
  let port = options.port ?? 0;
  const restart = async ({ downtimeMs = 0 }: RestartOptions = {}) => {
    core.webhooks.hold();
    core.notifier.forget();
    core.proxy.forget();
    core.replication.interrupt();
    await app.close();
    if (downtimeMs > 0) await sleep(downtimeMs);
    app = buildServer(core, controls);
    await app.listen({ host, port });
    core.webhooks.release();
  };
  const controls = {
    stats,
    resetStats,
    restart,
    addUpstreamImage: (fixture: ImageFixture) => describe(core.addUpstreamImage(fixture)),
  };

  app = buildServer(core, controls);
  await app.listen({ host, port });
  const address = app.server.address();
  if (address && typeof address === 'object') port = address.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  core.externalUrl = (options.externalUrl ?? url).replace(/\/+$/, '');

  return {
    url,
    port,
    stats,
    resetStats,
    restart,
    setFaults: (faults) => core.faults.set(faults),
    addUpstreamImage: controls.addUpstreamImage,
    addLocalImage: (fixture) => describe(core.addLocalImage(fixture)),
    async close() {
      core.close();
      await app.close();
    },
  };
}
