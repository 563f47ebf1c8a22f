/**
 * Emulator configuration: timing (how long copies take, scaled so tests run fast), users,
 * projects, images, faults; programmatic options and their environment twins.
 */
import type { ImageSpec } from './artifacts/content.ts';
import type { UserSpec } from './auth/access.ts';
import type { Faults } from './faults/faults.ts';
import { faultsFromEnv } from './faults/faults.ts';
import type { Random } from '@srcnet/service-kit';
import { jittered } from '@srcnet/service-kit';

export interface Timing {
  /** Multiplies every simulated duration: 0.01 makes a 100 s copy take 1 s (default 1). */
  timeScale: number;
  /** Replication and proxy-cache transfer speed before scaling (default 50 MB/s). */
  bandwidthBytesPerSecond: number;
  /** Spread of durations around their nominal value, 0-1 (default 0.2). */
  jitter: number;
  /** Fixed cost of a replication task before scaling (default 2 s). */
  replicationOverheadMs: number;
  /** Fixed cost of caching a proxied image before scaling (default 1 s). */
  proxyOverheadMs: number;
  /** Time a replication task stays Pending before it runs, before scaling (default 500 ms). */
  taskScheduleMs: number;
  /** First webhook retry delay before scaling, doubled each retry (default 2 s). */
  webhookRetryDelayMs: number;
  webhookMaxRetries: number;
  /** Per-attempt webhook timeout in real milliseconds (default 10 s). */
  webhookTimeoutMs: number;
  /** How long a reordered webhook waits for a successor, in real milliseconds (default 500). */
  reorderHoldMs: number;
}

export const DEFAULT_TIMING: Timing = {
  timeScale: 1,
  bandwidthBytesPerSecond: 50_000_000,
  jitter: 0.2,
  replicationOverheadMs: 2000,
  proxyOverheadMs: 1000,
  taskScheduleMs: 500,
  webhookRetryDelayMs: 2000,
  webhookMaxRetries: 3,
  webhookTimeoutMs: 10_000,
  reorderHoldMs: 500,
};

export function resolveTiming(partial: Partial<Timing> = {}): Timing {
  const timing = { ...DEFAULT_TIMING, ...partial };
  for (const [key, value] of Object.entries(timing))
    if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0))
      throw new RangeError(`timing.${key} must be a non-negative number (got ${String(value)})`);
  if (timing.bandwidthBytesPerSecond <= 0)
    throw new RangeError('timing.bandwidthBytesPerSecond must be positive');
  if (timing.jitter > 1) throw new RangeError(`timing.jitter must be from 0 to 1 (got ${timing.jitter})`);
  if (!Number.isInteger(timing.webhookMaxRetries))
    throw new RangeError('timing.webhookMaxRetries must be an integer');
  return timing;
}

/** Real milliseconds for moving `bytes` at `bytesPerSecond` after `overheadMs`, jittered and scaled. */
export function transferMs(
  timing: Timing,
  random: Random,
  overheadMs: number,
  bytes: number,
  bytesPerSecond = timing.bandwidthBytesPerSecond,
): number {
  return jittered(random, overheadMs + (bytes / bytesPerSecond) * 1000, timing.jitter) * timing.timeScale;
}

/** A made-up image at a registry host (upstream) or in a local project. */
export interface ImageFixture extends ImageSpec {
  /** `host/repository:tag` for upstreams; `project/repository:tag` for local images. */
  image: string;
}

export interface ProjectFixture {
  name: string;
  public?: boolean;
  /** Makes the project a proxy cache of this remote registry (created when missing). */
  proxy?: { registryName: string; type: string; url: string; speedKb?: number; localOnNotFound?: boolean };
}

export interface HarborEmulatorOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** How Harbor names itself in webhook payloads and the token realm; the listening URL by default. */
  externalUrl?: string;
  seed?: number;
  /** Default: `admin` / `Harbor12345`, a system administrator. */
  users?: Record<string, UserSpec>;
  robotPrefix?: string;
  timing?: Partial<Timing>;
  /** Probability that a replication task ends in Error (default 0). */
  replicationFailureRate?: number;
  faults?: Faults;
  projects?: ProjectFixture[];
  upstreamImages?: ImageFixture[];
  localImages?: ImageFixture[];
  /** Log requests and webhook failures to stderr. */
  logger?: boolean;
}

type Env = Record<string, string | undefined>;

function envNumber(env: Env, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new RangeError(`${name}=${text} must be a number`);
  return value;
}

/**
 * Options from the environment: HARBOR_EMULATOR_PORT, HARBOR_EMULATOR_HOST,
 * HARBOR_EMULATOR_EXTERNAL_URL, HARBOR_EMULATOR_SEED, HARBOR_EMULATOR_TIME_SCALE,
 * HARBOR_EMULATOR_BANDWIDTH (bytes/s), HARBOR_EMULATOR_REPLICATION_FAILURE_RATE,
 * HARBOR_EMULATOR_ADMIN_PASSWORD, and the fault variables of faultsFromEnv.
 */
export function optionsFromEnv(env: Env): HarborEmulatorOptions {
  const options: HarborEmulatorOptions = { faults: faultsFromEnv(env) };
  const port = envNumber(env, 'HARBOR_EMULATOR_PORT');
  if (port !== undefined) {
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
      throw new RangeError(`HARBOR_EMULATOR_PORT=${port} must be a port number`);
    options.port = port;
  }
  if (env.HARBOR_EMULATOR_HOST) options.host = env.HARBOR_EMULATOR_HOST;
  if (env.HARBOR_EMULATOR_EXTERNAL_URL) options.externalUrl = env.HARBOR_EMULATOR_EXTERNAL_URL;
  const seed = envNumber(env, 'HARBOR_EMULATOR_SEED');
  if (seed !== undefined) options.seed = seed;
  const timing: Partial<Timing> = {};
  const scale = envNumber(env, 'HARBOR_EMULATOR_TIME_SCALE');
  if (scale !== undefined) timing.timeScale = scale;
  const bandwidth = envNumber(env, 'HARBOR_EMULATOR_BANDWIDTH');
  if (bandwidth !== undefined) timing.bandwidthBytesPerSecond = bandwidth;
  resolveTiming(timing);
  if (Object.keys(timing).length > 0) options.timing = timing;
  const failureRate = envNumber(env, 'HARBOR_EMULATOR_REPLICATION_FAILURE_RATE');
  if (failureRate !== undefined) options.replicationFailureRate = failureRate;
  if (env.HARBOR_EMULATOR_ADMIN_PASSWORD)
    options.users = { admin: { password: env.HARBOR_EMULATOR_ADMIN_PASSWORD, admin: true } };
  return options;
}
