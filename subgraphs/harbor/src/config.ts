/**
 * The Harbor worker's configuration, read from the environment (see docs/harbor.md for every
 * variable) with defaults that run against the emulator of `npm start`.
 */
import { createHmac } from 'node:crypto';
import {
  ConfigError,
  envChoice,
  envList,
  envNumber,
  envSecret,
  envString,
  type AuthMode,
} from '@srcnet/service-kit';

export type CopyMode = 'auto' | 'replication' | 'proxy-cache';

export interface HarborWorkerConfig {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** How Harbor reaches this worker's webhook endpoint; the listening address by default. */
  publicUrl?: string;
  sqlitePath: string;
  authMode: AuthMode;
  gatewaySecret: string;
  admins: string[];
  /** Signs callbacks to the broker and checks its commands. */
  callbackSecret: string;
  harbor: {
    url: string;
    username: string;
    password: string;
    /** The host:port images are pulled from the local Harbor by (the Skaha worker launches from it). */
    registryHost: string;
  };
  /** Project that replicated images land in, under their source repository path. */
  replicationProject: string;
  copyMode: CopyMode;
  /** Base URLs of source registries by host, for registries not served over https on their name. */
  upstreamUrls: Record<string, string>;
  /** Check that manifests hash to their digests (off only for stand-in registries). */
  verifyDigests: boolean;
  /** Completion from Harbor's webhooks (on), or one batched execution watcher (off). */
  webhooks: boolean;
  /** The Authorization value Harbor sends with each webhook delivery. */
  webhookAuthHeader: string;
  /** Interval of the batched watcher when webhooks are off. */
  watchIntervalMs: number;
  /**
   * With webhooks on, how often the same watcher reconciles (a lost webhook); 0: only at start-up.
   */
  reconcileIntervalMs: number;
  estimate: {
    /** Copy speed assumed until history says otherwise, bytes per second. */
    bandwidthBytesPerSecond: number;
    /** Fixed cost of a copy (scheduling, manifest checks), seconds. */
    overheadSeconds: number;
    /** Size assumed when the source registry cannot say, bytes. */
    unknownSizeBytes: number;
    /** Copies from one registry needed before their observed speed replaces the configured one. */
    minHistory: number;
  };
  /** How long an image lookup is reused (estimates, the portal query), milliseconds. */
  lookupCacheMs: number;
}

type Env = Record<string, string | undefined>;

function parseUpstreamUrls(text: string | undefined): Record<string, string> {
  if (!text) return {};
  const map: Record<string, string> = {};
  for (const entry of text.split(',')) {
    const [host, url] = entry.split('=').map((part) => part.trim());
    if (!host || !url || !/^https?:\/\//.test(url))
      throw new ConfigError(`HARBOR_UPSTREAM_URLS entry "${entry}" must be host=http(s)://url`);
    map[host.toLowerCase()] = url.replace(/\/+$/, '');
  }
  return map;
}

export function loadConfig(env: Env = process.env): HarborWorkerConfig {
  const authMode = envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev');
  const secret = (name: string) => envSecret(env, name, authMode);
  const callbackSecret = secret('CALLBACK_SECRET');
  const harborUrl = envString(env, 'HARBOR_URL', 'http://127.0.0.1:4104').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(harborUrl))
    throw new ConfigError(`HARBOR_URL=${harborUrl} must be an http(s) URL`);
  const webhookSecret =
    envString(env, 'HARBOR_WEBHOOK_SECRET') ??
    // Stable across restarts without one more secret to manage: the policy registered is reused.
    createHmac('sha256', callbackSecret).update('harbor-webhook').digest('hex');
  const publicUrl = envString(env, 'HARBOR_WORKER_PUBLIC_URL');
  return {
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envNumber(env, 'PORT', 4004, { min: 0, max: 65535 }),
    ...(publicUrl ? { publicUrl: publicUrl.replace(/\/+$/, '') } : {}),
    sqlitePath: envString(env, 'HARBOR_SQLITE_PATH', 'data/harbor.sqlite'),
    authMode,
    gatewaySecret: secret('GATEWAY_SECRET'),
    admins: envList(env, 'ADMIN_USERS', ['admin']),
    callbackSecret,
    harbor: {
      url: harborUrl,
      username: envString(env, 'HARBOR_USERNAME', 'admin'),
      password: envString(env, 'HARBOR_PASSWORD', 'Harbor12345'),
      registryHost: envString(env, 'HARBOR_REGISTRY_HOST', new URL(harborUrl).host).toLowerCase(),
    },
    replicationProject: envString(env, 'HARBOR_REPLICATION_PROJECT', 'skaha'),
    copyMode: envChoice(env, 'HARBOR_COPY_MODE', ['auto', 'replication', 'proxy-cache'] as const, 'auto'),
    upstreamUrls: parseUpstreamUrls(envString(env, 'HARBOR_UPSTREAM_URLS')),
    verifyDigests: envChoice(env, 'HARBOR_VERIFY_DIGESTS', ['true', 'false'] as const, 'true') === 'true',
    webhooks: envChoice(env, 'HARBOR_WEBHOOKS', ['on', 'off'] as const, 'on') === 'on',
    webhookAuthHeader: `Bearer ${webhookSecret}`,
    watchIntervalMs: envNumber(env, 'HARBOR_WATCH_INTERVAL_SECONDS', 5, { min: 0.05 }) * 1000,
    reconcileIntervalMs: envNumber(env, 'HARBOR_RECONCILE_SECONDS', 60, { min: 0 }) * 1000,
    estimate: {
      bandwidthBytesPerSecond: envNumber(env, 'HARBOR_COPY_BANDWIDTH', 50_000_000, { min: 1 }),
      overheadSeconds: envNumber(env, 'HARBOR_COPY_OVERHEAD_SECONDS', 3, { min: 0 }),
      unknownSizeBytes: envNumber(env, 'HARBOR_UNKNOWN_IMAGE_BYTES', 1_000_000_000, { min: 0 }),
      minHistory: envNumber(env, 'HARBOR_ESTIMATE_MIN_HISTORY', 3, { min: 1 }),
    },
    lookupCacheMs: envNumber(env, 'HARBOR_LOOKUP_CACHE_SECONDS', 30, { min: 0 }) * 1000,
  };
}
