import {
  ConfigError,
  envChoice,
  envList,
  envNumber,
  envSecret,
  envString,
  type AuthMode,
} from '@srcnet/service-kit';

/** Whether the worker asks Skaha for status callbacks: `auto` probes `GET /callbacks` at start. */
export type CallbackMode = 'auto' | 'on' | 'off';

export interface SkahaWorkerConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The base URL Skaha's callbacks reach this worker at; default the listening address. */
  publicUrl: string | undefined;
  /** The Skaha API base, `…/skaha/v1`. */
  skahaUrl: string;
  /** One service token for every Skaha call in this first version (see docs/skaha.md). */
  skahaToken: string;
  /** Credentials for images outside Skaha's public cache (`x-skaha-registry-auth`). */
  registryAuth: { username: string; secret: string } | undefined;
  callbacks: CallbackMode;
  /** HMAC secret Skaha signs its callbacks with (≥ 16 characters). */
  skahaCallbackSecret: string;
  /** The secret of broker commands and of our callbacks to the broker. */
  callbackSecret: string;
  /** The image of notebook sessions (a JupyterNotebook executable names none). */
  notebookImage: string;
  /** The Harbor worker, asked for the local copy of a DockerContainer image. */
  harborWorkerUrl: string | undefined;
  watcher: {
    /** Interval while something is starting or stopping. */
    fastMs: number;
    /** Interval while everything is steady. */
    slowMs: number;
    /**
     * With callbacks on, the interval of the reconciling listing that catches a lost callback
     * (it also runs at start); 0 turns it off.
     */
    reconcileMs: number;
    /** The longest wait after errors. */
    maxBackoffMs: number;
  };
  sqlitePath: string;
  authMode: AuthMode;
  gatewaySecret: string;
  admins: string[];
  logLevel: string;
}

const DEV_SKAHA_CALLBACK_SECRET = 'dev-only-skaha-callback-secret';

type Env = Record<string, string | undefined>;

/** Every setting from the environment; errors name the variable. Variables are listed in docs/skaha.md. */
export function loadConfig(env: Env = process.env): SkahaWorkerConfig {
  const authMode = envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev');
  const secret = (name: string, devDefault?: string) => envSecret(env, name, authMode, devDefault);
  const skahaCallbackSecret = secret('SKAHA_CALLBACK_SECRET', DEV_SKAHA_CALLBACK_SECRET);
  if (skahaCallbackSecret.length < 16)
    throw new ConfigError(
      'SKAHA_CALLBACK_SECRET must be at least 16 characters (the callback extension’s rule)',
    );
  const username = envString(env, 'SKAHA_REGISTRY_USERNAME');
  const registrySecret = envString(env, 'SKAHA_REGISTRY_SECRET');
  if ((username === undefined) !== (registrySecret === undefined))
    throw new ConfigError('SKAHA_REGISTRY_USERNAME and SKAHA_REGISTRY_SECRET go together');
  const ms = (name: string, fallback: number) => envNumber(env, name, fallback, { min: 10 });
  return {
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envNumber(env, 'PORT', 4002, { min: 0, max: 65535 }),
    publicUrl: envString(env, 'SKAHA_WORKER_PUBLIC_URL'),
    skahaUrl: envString(env, 'SKAHA_API_URL', 'http://127.0.0.1:4102/skaha/v1'),
    skahaToken: secret('SKAHA_TOKEN', 'dev:dev'),
    registryAuth: username && registrySecret ? { username, secret: registrySecret } : undefined,
    callbacks: envChoice(env, 'SKAHA_CALLBACKS', ['auto', 'on', 'off'] as const, 'auto'),
    skahaCallbackSecret,
    callbackSecret: secret('CALLBACK_SECRET'),
    notebookImage: envString(env, 'SKAHA_NOTEBOOK_IMAGE', 'images.canfar.net/skaha/astroml:26.04'),
    harborWorkerUrl: envString(env, 'HARBOR_WORKER_URL'),
    watcher: {
      fastMs: ms('SKAHA_WATCH_FAST_MS', 1000),
      slowMs: ms('SKAHA_WATCH_SLOW_MS', 10_000),
      reconcileMs: envNumber(env, 'SKAHA_RECONCILE_SECONDS', 60, { min: 0 }) * 1000,
      maxBackoffMs: ms('SKAHA_WATCH_MAX_BACKOFF_MS', 60_000),
    },
    sqlitePath: envString(env, 'SKAHA_SQLITE_PATH', 'data/skaha.sqlite'),
    authMode,
    gatewaySecret: secret('GATEWAY_SECRET'),
    admins: envList(env, 'ADMIN_USERS', ['admin']),
    logLevel: envString(env, 'LOG_LEVEL', 'info'),
  };
}
