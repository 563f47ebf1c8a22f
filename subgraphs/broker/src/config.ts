import { resolve } from 'node:path';
import { KINDS } from '@srcnet/execution-step-schema';
import {
  ConfigError,
  envChoice,
  envList,
  envNumber,
  envSecret,
  envString,
  type AuthMode,
} from '@srcnet/service-kit';
import type { OfferRules } from './offers/make.ts';
import { parseDuration } from './offers/time.ts';
import type { SimulationOptions } from './simulation/platform.ts';

/** Every setting of the broker, read from the environment once at start-up (README lists them). */
export interface BrokerConfig {
  host: string;
  port: number;
  publicUrl?: string;
  databaseUrl: string;
  redisUrl?: string;
  authMode: AuthMode;
  gatewaySecret: string;
  callbackSecret: string;
  admins: string[];
  rules: OfferRules;
  workers: { skaha?: string; preparedata?: string; harbor?: string };
  simulation: SimulationOptions;
  /**
   * `commit` (default): a committed job wakes the runner at once. `poll`: jobs are looked for once
   * a second only, as the reference broker's loop does; kept to measure against (bench/broker-throughput).
   */
  jobWake: 'commit' | 'poll';
  /** How long a worker command may take before another instance (or this one, restarted) retries it. */
  jobLeaseMs: number;
  /**
   * How offers estimate preparation time: `learned` from history and the Harbor worker's image
   * check, the reference's `constants`, or none (`zero`, for benchmarks).
   */
  estimate: 'learned' | 'constants' | 'zero';
  /** Coverage the learned bounds aim at. */
  estimateQuantile: number;
  /** How long an offer waits for the Harbor worker's image check before going on without it. */
  imageCheckTimeoutMs: number;
  /**
   * How often the broker asks the workers for callbacks it may have missed (and at start-up);
   * 0: at start-up only.
   */
  reconcileMs: number;
}

function roleSeconds(text: string | undefined, name: string): SimulationOptions['prepareMs'] {
  const out: SimulationOptions['prepareMs'] = { executable: 1000, compute: 2000, storage: 500, data: 5000 };
  if (!text) return out;
  for (const part of text.split(',')) {
    const [role, value] = part.split('=').map((s) => s.trim());
    if (
      !role ||
      !['executable', 'compute', 'storage', 'data'].includes(role) ||
      value === undefined ||
      Number.isNaN(Number(value))
    ) {
      throw new ConfigError(
        `${name}=${text} must look like executable=1,compute=2,storage=0.5,data=5 (seconds)`,
      );
    }
    out[role as keyof typeof out] = Number(value) * 1000;
  }
  return out;
}

/** PostgreSQL when DATABASE_URL is set, else the SQLite file at SQLITE_PATH. */
export function databaseUrlOf(env: Record<string, string | undefined> = process.env): string {
  return envString(env, 'DATABASE_URL') ?? resolve(envString(env, 'SQLITE_PATH', 'data/broker.sqlite'));
}

export function loadConfig(env: Record<string, string | undefined> = process.env): BrokerConfig {
  const authMode = envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev');
  const secret = (name: string) => envSecret(env, name, authMode);
  const defaultDuration = envString(env, 'DEFAULT_DURATION', 'PT2H');
  const defaultDurationMs = parseDuration(defaultDuration);
  if (!defaultDurationMs || defaultDurationMs <= 0)
    throw new ConfigError(`DEFAULT_DURATION=${defaultDuration} must be an ISO-8601 duration such as PT2H`);
  const databaseUrl = databaseUrlOf(env);
  return {
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envNumber(env, 'BROKER_PORT', 4001, { min: 0, max: 65535 }),
    publicUrl: envString(env, 'PUBLIC_URL'),
    databaseUrl,
    redisUrl: envString(env, 'REDIS_URL'),
    authMode,
    gatewaySecret: secret('GATEWAY_SECRET'),
    callbackSecret: secret('CALLBACK_SECRET'),
    admins: envList(env, 'ADMIN_USERS', ['admin']),
    rules: {
      capacity: {
        cores: envNumber(env, 'SITE_CORES', 32, { min: 1 }),
        memoryGiB: envNumber(env, 'SITE_MEMORY_GIB', 32, { min: 1 }),
        storageGiB: envNumber(env, 'SITE_STORAGE_GIB', 1000, { min: 0 }),
      },
      limits: {
        maxCores: envNumber(env, 'MAX_CORES', 16, { min: 1 }),
        maxMemoryGiB: envNumber(env, 'MAX_MEMORY_GIB', 16, { min: 1 }),
        maxStorageGiB: envNumber(env, 'MAX_STORAGE_GIB', 1000, { min: 0 }),
        supportedKinds: envList(env, 'SUPPORTED_KINDS', Object.keys(KINDS)),
        trustedRegistries: envList(env, 'TRUSTED_REGISTRIES', []),
      },
      blockMs: envNumber(env, 'BOOKING_BLOCK_SECONDS', 60, { min: 0.001 }) * 1000,
      lookAheadMs: envNumber(env, 'BOOKING_LOOKAHEAD_HOURS', 24, { min: 1 / 3600 }) * 3_600_000,
      maxOffers: envNumber(env, 'MAX_OFFERS', 4, { min: 1, max: 100 }),
      maxChunkMs: envNumber(env, 'MAX_OFFER_HOURS', 4, { min: 1 / 3600 }) * 3_600_000,
      offerTtlMs: envNumber(env, 'OFFER_TTL_SECONDS', 300, { min: 1 }) * 1000,
      defaultDurationMs,
      releaseMs: envNumber(env, 'RELEASE_SECONDS', 10, { min: 0 }) * 1000,
    },
    workers: {
      skaha: envString(env, 'SKAHA_WORKER_URL'),
      preparedata: envString(env, 'PREPAREDATA_WORKER_URL'),
      harbor: envString(env, 'HARBOR_WORKER_URL'),
    },
    estimate: envChoice(env, 'PREPARATION_ESTIMATE', ['learned', 'constants', 'zero'] as const, 'learned'),
    estimateQuantile: envNumber(env, 'PREPARATION_ESTIMATE_QUANTILE', 0.9, { min: 0.51, max: 0.999 }),
    imageCheckTimeoutMs: envNumber(env, 'IMAGE_CHECK_TIMEOUT_SECONDS', 3, { min: 0.001 }) * 1000,
    jobLeaseMs: envNumber(env, 'JOB_LEASE_SECONDS', 60, { min: 1 }) * 1000,
    reconcileMs: envNumber(env, 'BROKER_RECONCILE_SECONDS', 300, { min: 0 }) * 1000,
    jobWake: envChoice(env, 'JOB_WAKE', ['commit', 'poll'] as const, 'commit'),
    simulation: {
      prepareMs: roleSeconds(envString(env, 'SIMULATION_PREPARE_SECONDS'), 'SIMULATION_PREPARE_SECONDS'),
      runMs: envNumber(env, 'SIMULATION_RUN_SECONDS', 30, { min: 0 }) * 1000,
      releaseMs: envNumber(env, 'SIMULATION_RELEASE_SECONDS', 1, { min: 0 }) * 1000,
      failureRate: envNumber(env, 'SIMULATION_FAILURE_RATE', 0, { min: 0, max: 1 }),
    },
  };
}
