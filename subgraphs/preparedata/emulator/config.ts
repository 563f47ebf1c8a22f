import os from 'node:os';
import path from 'node:path';
import { faultsFromEnv } from './faults/faults.ts';
import type { PrepareDataEmulatorOptions } from './index.ts';
import type { StorageAreaConfig } from './staging/storage.ts';

export const DEFAULT_EMULATOR_PORT = 4103;

function number(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be a number (got ${text})`);
  return value;
}

/** `a=1,b=2` to pairs; the error names the variable and the malformed item. */
function pairs(env: NodeJS.ProcessEnv, name: string): [string, string][] {
  const text = env[name];
  if (!text) return [];
  return text.split(',').map((item) => {
    const at = item.indexOf('=');
    if (at <= 0) throw new RangeError(`${name} items must be key=value (got ${item})`);
    return [item.slice(0, at).trim(), item.slice(at + 1).trim()];
  });
}

/**
 * Standalone configuration from PREPAREDATA_EMULATOR_* variables (PORT, HOST, DATA_ROOT,
 * TIME_SCALE, SEED, JITTER, TRANSFER_ERROR_RATE, TOKENS as token=user,..., ALLOW_DEV_TOKENS,
 * STORAGE_AREAS as id=bytes,..., CALLBACK_MIN_INTERVAL_MS, CALLBACK_MIN_PERCENT_STEP,
 * CALLBACK_MAX_ATTEMPTS) and the PREPAREDATA_FAULT_* switches.
 */
export function optionsFromEnv(env: NodeJS.ProcessEnv): PrepareDataEmulatorOptions {
  const options: PrepareDataEmulatorOptions = {
    host: env['PREPAREDATA_EMULATOR_HOST'] || '127.0.0.1',
    port: number(env, 'PREPAREDATA_EMULATOR_PORT') ?? DEFAULT_EMULATOR_PORT,
    dataRoot: env['PREPAREDATA_EMULATOR_DATA_ROOT'] || path.join(os.tmpdir(), 'srcnet-preparedata-emulator'),
    allowDevTokens: env['PREPAREDATA_EMULATOR_ALLOW_DEV_TOKENS'] !== 'false',
    tokens: Object.fromEntries(pairs(env, 'PREPAREDATA_EMULATOR_TOKENS')),
    faults: faultsFromEnv(env),
  };
  const scalars = {
    timeScale: 'PREPAREDATA_EMULATOR_TIME_SCALE',
    seed: 'PREPAREDATA_EMULATOR_SEED',
    jitter: 'PREPAREDATA_EMULATOR_JITTER',
    transferErrorRate: 'PREPAREDATA_EMULATOR_TRANSFER_ERROR_RATE',
  } as const;
  for (const [key, name] of Object.entries(scalars) as [keyof typeof scalars, string][]) {
    const value = number(env, name);
    if (value !== undefined) options[key] = value;
  }
  const areas = pairs(env, 'PREPAREDATA_EMULATOR_STORAGE_AREAS').map(([id, bytes]): StorageAreaConfig => {
    const capacityBytes = Number(bytes);
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0)
      throw new RangeError(
        `PREPAREDATA_EMULATOR_STORAGE_AREAS: capacity of ${id} must be a whole number of bytes`,
      );
    return { id, capacityBytes };
  });
  if (areas.length > 0) options.storageAreas = areas;
  const callbacks: NonNullable<PrepareDataEmulatorOptions['callbacks']> = {};
  const minIntervalMs = number(env, 'PREPAREDATA_EMULATOR_CALLBACK_MIN_INTERVAL_MS');
  if (minIntervalMs !== undefined) callbacks.minIntervalMs = minIntervalMs;
  const minPercentStep = number(env, 'PREPAREDATA_EMULATOR_CALLBACK_MIN_PERCENT_STEP');
  if (minPercentStep !== undefined) callbacks.minPercentStep = minPercentStep;
  const maxAttempts = number(env, 'PREPAREDATA_EMULATOR_CALLBACK_MAX_ATTEMPTS');
  if (maxAttempts !== undefined) callbacks.maxAttempts = maxAttempts;
  options.callbacks = callbacks;
  return options;
}
