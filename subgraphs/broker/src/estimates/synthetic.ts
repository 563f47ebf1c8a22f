/**
 * Synthetic estimation traces: steps arrive (in bursts, more by day), stage data from several
 * RSEs of different bandwidth and latency, copy an image unless Harbor already holds it, then
 * start a session. Durations have heavy tails (log-normal noise, Pareto stalls), slow down with
 * contention and by day, drift when a site's bandwidth or a cluster's start-up time changes, and
 * some actions fail. The same options give the same trace.
 */
import { Random } from './random.ts';
import type { DataStagingParams, ImageCopyParams, Observation, SessionStartParams } from './types.ts';

export interface SyntheticOptions {
  seed: number;
  /** Observations to produce. */
  count: number;
  /**
   * Typical size of a change of a site's bandwidth, a registry's or a session type's speed, in
   * natural-log units (0.7 ≈ a factor of two); each changes once or twice during the trace.
   */
  drift: number;
}

const MB = 1e6;
const GB = 1e9;
const SITES = [
  'SPSRC_STORM',
  'JPSRC_STORM',
  'AUSSRC_DCACHE',
  'CNSRC_XRD',
  'UKSRC_RAL_XRD',
  'CHSRC_DCACHE',
  'ITSRC_STORM',
];
const STORAGES = ['cephfs-scratch', 'posix-project', 'object-store'];
const REGISTRIES = ['images.canfar.net', 'ghcr.io', 'harbor.srcnet.skao.int', 'docker.io', 'quay.io'];
const SESSION_TYPES = {
  notebook: 14,
  carta: 22,
  headless: 6,
  contributed: 10,
  'desktop-app': 30,
} as const;
type SessionType = keyof typeof SESSION_TYPES;
const CORES = [1, 2, 4, 8, 16];
const CORE_WEIGHTS = [30, 30, 20, 12, 8];
const MEMORY = [2, 4, 8, 16, 32, 64];
const MEMORY_WEIGHTS = [15, 25, 25, 18, 11, 6];
/** Images Harbor keeps before evicting the least recently used. */
const HARBOR_CAPACITY = 12;
const STEPS_PER_HOUR = 20;

/** A speed that changes by a random factor at one or two instants. */
class Drifting {
  readonly #changes: { at: number; factor: number }[] = [];
  constructor(
    readonly base: number,
    random: Random,
    drift: number,
    span: number,
  ) {
    const n = drift > 0 ? 1 + (random.chance(0.5) ? 1 : 0) : 0;
    for (let i = 0; i < n; i++) {
      const sign = random.chance(0.5) ? 1 : -1;
      this.#changes.push({
        at: random.between(0.15, 0.85) * span,
        factor: Math.exp(sign * drift * random.between(0.5, 1.5)),
      });
    }
  }

  at(t: number): number {
    let value = this.base;
    for (const c of this.#changes) if (t >= c.at) value *= c.factor;
    return value;
  }
}

/** Busy-ness of SRCNet by time of day, 0 at 04:00 UTC to 1 at 16:00 UTC. */
const daytime = (t: number) => 0.5 * (1 - Math.cos((2 * Math.PI * (t / 3600 - 4)) / 24));

/** A min-heap of numbers: running actions' end times. */
class Ends {
  readonly #heap: number[] = [];
  get size(): number {
    return this.#heap.length;
  }
  push(value: number): void {
    const h = this.#heap;
    h.push(value);
    for (let i = h.length - 1; i > 0;) {
      const up = (i - 1) >> 1;
      if (h[up]! <= h[i]!) break;
      [h[up], h[i]] = [h[i]!, h[up]!];
      i = up;
    }
  }
  /** Drops every end at or before t. */
  settle(t: number): void {
    const h = this.#heap;
    while (h.length > 0 && h[0]! <= t) {
      const last = h.pop()!;
      if (h.length === 0) break;
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
  }
}

interface PendingSession {
  at: number;
  params: Omit<SessionStartParams, 'inFlight'>;
}

export function generateTrace(options: SyntheticOptions): Observation[] {
  const { seed, count, drift } = options;
  if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
  if (!(drift >= 0)) throw new RangeError('drift must be a non-negative number');
  const random = new Random(seed);
  const origin = Date.parse('2026-01-05T00:00:00Z');
  // Expected length of the trace, for placing drift inside it: steps bring about 2.5
  // observations each, and campaigns add about 40% more steps.
  const span = (count / (STEPS_PER_HOUR * 1.4 * 2.5)) * 3600;

  const sites = SITES.map(() => ({
    bandwidth: new Drifting(random.logUniform(30, 1000) * MB, random, drift, span),
    latency: random.logUniform(5, 90),
    noise: random.between(0.15, 0.4),
    popularity: random.logUniform(0.3, 3),
  }));
  const storageLatency = STORAGES.map(() => random.between(0, 10));
  const registries = REGISTRIES.map(() => ({
    bandwidth: new Drifting(random.logUniform(20, 300) * MB, random, drift, span),
    latency: random.logUniform(2, 20),
  }));
  const images = Array.from({ length: 150 }, (_, rank) => ({
    id: rank,
    registry: random.pick(REGISTRIES.map(() => 1)),
    bytes: Math.round(Math.min(20 * GB, Math.max(50 * MB, random.logNormal(1.2 * GB, 0.7)))),
    popularity: 1 / (rank + 1) ** 1.1,
  }));
  const sessionTypes = Object.fromEntries(
    Object.entries(SESSION_TYPES).map(([type, base]) => [type, new Drifting(base, random, drift, span)]),
  ) as Record<SessionType, Drifting>;
  const harbor: number[] = [];

  const out: Observation[] = [];
  const stagings = new Ends();
  const starting = new Ends();
  const pending: PendingSession[] = [];
  const emit = (
    action: Observation['action'],
    params: Observation['params'],
    t: number,
    seconds: number,
    failed: boolean,
  ) =>
    out.push({
      action,
      params,
      startedAt: new Date(origin + Math.round(t * 1000)).toISOString(),
      durationSeconds: Math.round(seconds * 1000) / 1000,
      outcome: failed ? 'failed' : 'ok',
    } as Observation);
  const failure = (timeout: number) =>
    random.chance(0.5) ? random.logNormal(5, 0.8) : timeout * random.between(1, 1.05);

  const startSession = (s: PendingSession) => {
    starting.settle(s.at);
    const params: SessionStartParams = { ...s.params, inFlight: starting.size };
    const base = sessionTypes[params.type as SessionType].at(s.at);
    let seconds =
      base *
      random.logNormal(1, 0.3) *
      (1 + params.inFlight / 8) *
      (1 + 0.08 * Math.log2(params.cores)) *
      (1 + 0.3 * daytime(s.at));
    // A large session may wait for a node to be added; any may hit a slow image mount.
    if ((params.cores >= 8 || params.memoryGiB >= 32) && random.chance(0.25))
      seconds += random.pareto(45, 1.5);
    if (random.chance(0.03)) seconds += random.pareto(20, 1.2);
    const failed = random.chance(0.03);
    if (failed) seconds = failure(600);
    starting.push(s.at + seconds);
    emit('session-start', params, s.at, seconds, failed);
  };

  let t = 0;
  let campaign = 0;
  let campaignSite = 0;
  let campaignImage = 0;
  while (out.length < count) {
    // Arrivals: a Poisson process, thinned by time of day, with occasional campaigns of
    // similar steps a few seconds apart.
    if (campaign > 0) {
      campaign -= 1;
      t += random.exponential(20);
    } else {
      do t += random.exponential(3600 / STEPS_PER_HOUR / 1.5);
      while (!random.chance(0.4 + 0.6 * daytime(t)));
      if (random.chance(0.03)) {
        campaign = 5 + Math.floor(random.uniform() * 20);
        campaignSite = random.pick(sites.map((s) => s.popularity));
        campaignImage = random.pick(images.map((i) => i.popularity));
      }
    }
    pending.sort((a, b) => a.at - b.at);
    while (pending.length > 0 && pending[0]!.at <= t) startSession(pending.shift()!);

    let ready = 0;
    let failed = false;
    if (random.chance(0.7)) {
      const n = random.chance(0.3) ? 2 + Math.floor(random.exponential(0.7)) : 1;
      const home = campaign > 0 ? campaignSite : random.pick(sites.map((s) => s.popularity));
      for (let i = 0; i < Math.min(n, 4); i++) {
        const s = random.chance(0.8) ? home : random.pick(sites.map((x) => x.popularity));
        const site = sites[s]!;
        const storage = random.pick([5, 3, 2]);
        const kind = random.pick([35, 58, 7]);
        const bytes = Math.round(
          kind === 0
            ? random.logNormal(20 * MB, 1.5)
            : kind === 1
              ? random.logNormal(3 * GB, 1.2)
              : Math.min(2e12, random.pareto(20 * GB, 1.5)),
        );
        stagings.settle(t);
        const params: DataStagingParams = {
          bytes,
          sourceSite: SITES[s]!,
          targetStorage: STORAGES[storage]!,
          inFlight: stagings.size,
        };
        const rate = site.bandwidth.at(t) / (1 + 0.6 * daytime(t)) / (1 + params.inFlight / 8);
        let seconds =
          (site.latency + storageLatency[storage]!) * random.logNormal(1, 0.35) +
          (bytes / rate) * random.logNormal(1, site.noise);
        if (random.chance(0.04)) seconds *= random.pareto(1.5, 1.3);
        const fails = random.chance(0.04);
        if (fails) seconds = failure(3600);
        failed ||= fails;
        stagings.push(t + seconds);
        ready = Math.max(ready, seconds);
        emit('data-staging', params, t, seconds, fails);
      }
    }

    const container = random.chance(0.6);
    let type: SessionType;
    if (container) {
      const image = images[campaign > 0 ? campaignImage : random.pick(images.map((i) => i.popularity))]!;
      const cached = harbor.indexOf(image.id);
      const params: ImageCopyParams = {
        bytes: image.bytes,
        registry: REGISTRIES[image.registry]!,
        local: cached >= 0,
      };
      let seconds: number;
      if (params.local) {
        seconds = random.logNormal(1.2, 0.4) + image.bytes / (2 * GB);
      } else {
        const registry = registries[image.registry]!;
        seconds =
          registry.latency * random.logNormal(1, 0.3) +
          (image.bytes / (registry.bandwidth.at(t) / (1 + 0.6 * daytime(t)))) * random.logNormal(1, 0.3);
        if (random.chance(0.03)) seconds *= random.pareto(1.5, 1.4);
      }
      const fails = random.chance(0.02);
      if (fails) seconds = failure(900);
      else {
        if (params.local) harbor.splice(cached, 1);
        harbor.unshift(image.id);
        harbor.length = Math.min(harbor.length, HARBOR_CAPACITY);
      }
      failed ||= fails;
      ready = Math.max(ready, seconds);
      emit('image-copy', params, t, seconds, fails);
      type = (['headless', 'contributed', 'desktop-app'] as const)[random.pick([70, 15, 15])]!;
    } else {
      type = random.chance(0.8) ? 'notebook' : 'carta';
    }
    if (!failed) {
      pending.push({
        at: t + ready + random.between(0.5, 3),
        params: {
          type,
          cores: CORES[random.pick(CORE_WEIGHTS)]!,
          memoryGiB: MEMORY[random.pick(MEMORY_WEIGHTS)]!,
        },
      });
    }
  }
  // Every session still to start begins after the last arrival, so after these the trace is
  // complete up to its count-th start.
  pending.sort((a, b) => a.at - b.at);
  for (const s of pending) startSession(s);
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt)).slice(0, count);
}
