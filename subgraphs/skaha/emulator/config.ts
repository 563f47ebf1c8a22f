import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { ConfigError, envList, envNumber, envString } from '@srcnet/service-kit';
import type { ImageJson, ResourceContext } from '../src/skaha/types.ts';
import type { DeliveryOptions } from './callbacks/notifier.ts';
import type { Faults } from './faults/faults.ts';
import { faultsFromEnv } from './faults/faults.ts';
import type { Capacity, ImageRule, TypeTiming, WorkloadType } from './sessions/engine.ts';

export interface SkahaEmulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Bearer tokens accepted besides `dev:<user>`, each to the user it stands for. */
  tokens?: Record<string, string>;
  /** Accept `Bearer dev:<user>` (default true). */
  allowDevTokens?: boolean;
  /** Users who authenticate but are not authorised (403), as if outside the Skaha group. */
  deniedUsers?: string[];
  context?: ResourceContext;
  /** The public image cache; images outside it need `x-skaha-registry-auth`. */
  images?: ImageJson[];
  /** Trusted registry hosts (`GET /repository`); default `images.canfar.net`. */
  registryHosts?: string[];
  /** Host in connectURLs; default `sessions.canfar.emulator`. */
  sessionsHost?: string;
  /** Default `/arc/home`. */
  homeDir?: string;
  /** What all sessions together may request; default 64 cores, 256 GB, 8 GPUs. */
  cluster?: Partial<Capacity>;
  /** Requests of flexible sessions; default headless 1 core / 4 GB, others the context defaultRequest. */
  flexRequests?: Partial<Record<WorkloadType, { cores: number; ramGB: number }>>;
  /** Per type; defaults: startup 1500 ms, headless runs 5000 ms, the rest until deleted. */
  timing?: Partial<Record<WorkloadType, Partial<TypeTiming>>>;
  imageRules?: ImageRule[];
  /** Chance that a session fails, 0..1 (default 0). */
  failureRate?: number;
  /** Running time of a failing session without a run time of its own (default 2000 ms). */
  failAfterMs?: number;
  failureMessage?: string;
  /** Session lifetime and what renew resets it to (default 345600 = 4 days). */
  expirySeconds?: number;
  /** How long a deleted session is listed as Terminating (default 1000 ms). */
  terminatingMs?: number;
  /** Seeds failures, faults and callback jitter (default 1); ids are always random. */
  seed?: number;
  /** How often time-driven transitions are applied (default 25 ms); requests apply them too. */
  tickMs?: number;
  callbacks?: Partial<DeliveryOptions> & {
    /** Keep user-wide registrations over a restart (default false; per-session ones always survive). */
    persistUserRegistrations?: boolean;
  };
  faults?: Faults;
  logger?: Logger;
}

const ALL_TYPES: WorkloadType[] = [
  'desktop',
  'notebook',
  'carta',
  'contributed',
  'firefly',
  'headless',
  'desktop-app',
];

/** Every type's timing with the defaults filled in; errors name the field. */
export function resolveTiming(timing: SkahaEmulatorOptions['timing'] = {}): Record<WorkloadType, TypeTiming> {
  const result = {} as Record<WorkloadType, TypeTiming>;
  for (const type of ALL_TYPES) {
    const given = timing[type] ?? {};
    const startupMs = given.startupMs ?? 1500;
    const runMs = given.runMs !== undefined ? given.runMs : type === 'headless' ? 5000 : null;
    if (!(startupMs >= 0)) throw new RangeError(`timing.${type}.startupMs must be a non-negative number`);
    if (runMs !== null && !(runMs >= 0))
      throw new RangeError(`timing.${type}.runMs must be null or non-negative`);
    result[type] = { startupMs, runMs };
  }
  return result;
}

type Env = Record<string, string | undefined>;

/**
 * Options from the environment: SKAHA_EMULATOR_CONFIG names a YAML or JSON file with any of the
 * options (images, imageRules, context, timing…); the variables below override it.
 */
export function optionsFromEnv(env: Env): SkahaEmulatorOptions {
  const file = envString(env, 'SKAHA_EMULATOR_CONFIG');
  const options: SkahaEmulatorOptions = file ? readConfigFile(file) : {};
  const number = (name: string, bounds: { min?: number; max?: number } = { min: 0 }) => {
    const value = envNumber(env, `SKAHA_EMULATOR_${name}`, NaN, bounds);
    return Number.isNaN(value) ? undefined : value;
  };
  const flag = (name: string) => {
    const text = envString(env, `SKAHA_EMULATOR_${name}`);
    if (text === undefined) return undefined;
    if (text !== 'true' && text !== 'false')
      throw new ConfigError(`SKAHA_EMULATOR_${name}=${text} must be true or false`);
    return text === 'true';
  };
  const set = <K extends keyof SkahaEmulatorOptions>(key: K, value: SkahaEmulatorOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set('host', envString(env, 'SKAHA_EMULATOR_HOST'));
  set('port', number('PORT', { min: 0, max: 65535 }) ?? options.port ?? 4102);
  const tokens = envString(env, 'SKAHA_EMULATOR_TOKENS');
  if (tokens) {
    options.tokens = {};
    for (const pair of tokens.split(',')) {
      const [token, user] = pair.split('=').map((part) => part.trim());
      if (!token || !user) throw new ConfigError(`SKAHA_EMULATOR_TOKENS: ${pair} must be token=user`);
      options.tokens[token] = user;
    }
  }
  set('allowDevTokens', flag('ALLOW_DEV_TOKENS'));
  if (env.SKAHA_EMULATOR_DENIED_USERS !== undefined)
    options.deniedUsers = envList(env, 'SKAHA_EMULATOR_DENIED_USERS', []);
  if (env.SKAHA_EMULATOR_REGISTRY_HOSTS !== undefined)
    options.registryHosts = envList(env, 'SKAHA_EMULATOR_REGISTRY_HOSTS', []);
  set('sessionsHost', envString(env, 'SKAHA_EMULATOR_SESSIONS_HOST'));
  set('seed', number('SEED', {}));
  set('failureRate', number('FAILURE_RATE', { min: 0, max: 1 }));
  set('failAfterMs', number('FAIL_AFTER_MS'));
  set('expirySeconds', number('EXPIRY_SECONDS'));
  set('terminatingMs', number('TERMINATING_MS'));
  const startupMs = number('STARTUP_MS');
  const headlessRunMs = number('HEADLESS_RUN_MS');
  if (startupMs !== undefined || headlessRunMs !== undefined) {
    const timing = (options.timing ??= {});
    for (const type of ALL_TYPES) {
      const own = (timing[type] ??= {});
      if (startupMs !== undefined) own.startupMs = startupMs;
      if (type === 'headless' && headlessRunMs !== undefined) own.runMs = headlessRunMs;
    }
  }
  const cluster = {
    cores: number('CLUSTER_CORES'),
    ramGB: number('CLUSTER_RAM_GB'),
    gpus: number('CLUSTER_GPUS'),
  };
  for (const [key, value] of Object.entries(cluster))
    if (value !== undefined) (options.cluster ??= {})[key as keyof Capacity] = value;
  const persist = flag('PERSIST_USER_CALLBACKS');
  if (persist !== undefined) options.callbacks = { ...options.callbacks, persistUserRegistrations: persist };
  const faults = faultsFromEnv(env);
  if (Object.keys(faults.api ?? {}).length + Object.keys(faults.callbacks ?? {}).length > 0)
    options.faults = faults;
  return options;
}

function readConfigFile(file: string): SkahaEmulatorOptions {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`SKAHA_EMULATOR_CONFIG=${file} cannot be read: ${(error as Error).message}`);
  }
  const value: unknown = parseYaml(text);
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(
      `SKAHA_EMULATOR_CONFIG=${file} must hold a YAML or JSON object of emulator options`,
    );
  return value as SkahaEmulatorOptions;
}
