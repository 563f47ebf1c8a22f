/** Every setting of the prepareData worker, read from the environment once (docs/preparedata.md lists them). */
import { resolve } from 'node:path';
import {
  ConfigError,
  envChoice,
  envList,
  envNumber,
  envSecret,
  envString,
  type AuthMode,
} from '@srcnet/service-kit';

export interface PrepareDataWorkerConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** How the broker and prepareData reach this worker; the listen address when absent. */
  publicUrl?: string;
  sqlitePath: string;
  authMode: AuthMode;
  gatewaySecret: string;
  /** Shared with the broker: commands in, component callbacks out. */
  callbackSecret: string;
  admins: string[];
  /** prepareData's root URL. */
  prepareDataUrl: string;
  /** Bearer token the worker presents to prepareData (a service identity). */
  prepareDataToken: string;
  /** Secret prepareData signs its notifications with (≥ 16 characters). */
  prepareDataCallbackSecret: string;
  /**
   * `on`: each job registers for prepareData's notifications. `off`: the service cannot call
   * back, so one batched watcher lists every tracked job each `watchIntervalMs`.
   */
  callbacks: 'on' | 'off';
  watchIntervalMs: number;
  /**
   * With callbacks on, how often the same watcher reconciles (one list call) so that a lost
   * notification delays a change by at most this and one call; 0: only at start-up.
   */
  reconcileIntervalMs: number;
  /** The site's storage area that data is staged into (the DM API's to_storage_area_uuid). */
  storageArea: string;
  /** Least time between two progress callbacks of one component. */
  progressIntervalMs: number;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): PrepareDataWorkerConfig {
  const authMode = envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev');
  const secret = (name: string) => envSecret(env, name, authMode);
  const prepareDataCallbackSecret = secret('PREPAREDATA_CALLBACK_SECRET');
  if (prepareDataCallbackSecret.length < 16)
    throw new ConfigError('PREPAREDATA_CALLBACK_SECRET must be at least 16 characters');
  const token = envString(env, 'PREPAREDATA_TOKEN');
  if (!token && authMode !== 'dev')
    throw new ConfigError(`PREPAREDATA_TOKEN must be set when AUTH_MODE=${authMode}`);
  return {
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envNumber(env, 'PORT', 4003, { min: 0, max: 65535 }),
    publicUrl: envString(env, 'PUBLIC_URL'),
    sqlitePath: resolve(envString(env, 'SQLITE_PATH', 'data/preparedata.sqlite')),
    authMode,
    gatewaySecret: secret('GATEWAY_SECRET'),
    callbackSecret: secret('CALLBACK_SECRET'),
    admins: envList(env, 'ADMIN_USERS', ['admin']),
    prepareDataUrl: envString(env, 'PREPAREDATA_URL', 'http://127.0.0.1:4103'),
    prepareDataToken: token ?? 'dev:preparedata-worker',
    prepareDataCallbackSecret,
    callbacks: envChoice(env, 'PREPAREDATA_CALLBACKS', ['on', 'off'] as const, 'on'),
    watchIntervalMs: envNumber(env, 'PREPAREDATA_WATCH_INTERVAL_SECONDS', 10, { min: 0.01 }) * 1000,
    reconcileIntervalMs: envNumber(env, 'PREPAREDATA_RECONCILE_SECONDS', 60, { min: 0 }) * 1000,
    storageArea: envString(env, 'PREPAREDATA_STORAGE_AREA', 'spsrc-user-area'),
    progressIntervalMs: envNumber(env, 'PROGRESS_INTERVAL_SECONDS', 1, { min: 0 }) * 1000,
  };
}
