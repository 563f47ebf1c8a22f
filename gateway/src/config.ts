import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, envChoice, envList, envNumber, envSecret, envString } from '@srcnet/service-kit';
import { subgraphUrls } from './compose/subgraphs.ts';
import type { AuthConfig } from './identity/authenticate.ts';
import type { LimitsConfig } from './limits/limits.ts';

export const SUPERGRAPH_PATH = resolve(import.meta.dirname, '../supergraph.graphql');

/** Every setting of the gateway, read from the environment once at start-up (docs/gateway.md lists them). */
export interface GatewayConfig {
  host: string;
  port: number;
  /** The supergraph SDL (composed by `npm run compose`). */
  supergraph: string;
  /** Where each subgraph listens, by its name in the supergraph; overrides the URLs composed in. */
  subgraphUrls: Record<string, string>;
  auth: AuthConfig;
  /** Signs the identity the gateway passes to subgraphs (x-srcnet-identity). */
  gatewaySecret: string;
  /** GraphiQL and introspection. */
  sandbox: boolean;
  limits: LimitsConfig;
  /** Shared pub/sub of step changes; without it the gateway follows the broker's subscription. */
  redisUrl?: string;
  /** Events a slow subscriber may have waiting before its subscription is ended. */
  subscriberQueueLimit: number;
  /** How often the fan-out looks for changes whose notice was lost (see fanout/catch-up.ts). */
  catchUpSeconds: number;
}

type Env = Record<string, string | undefined>;

function authConfig(env: Env): AuthConfig {
  const mode = envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev');
  if (mode === 'dev') return { mode, admins: envList(env, 'ADMIN_USERS', ['admin']) };
  const jwksUrl = envString(env, 'JWT_JWKS_URL');
  const secret = envString(env, 'JWT_SECRET');
  if (!jwksUrl === !secret)
    throw new ConfigError('AUTH_MODE=jwt needs exactly one of JWT_JWKS_URL and JWT_SECRET');
  const issuer = envString(env, 'JWT_ISSUER');
  const audience = envString(env, 'JWT_AUDIENCE');
  if (!issuer || !audience) throw new ConfigError('AUTH_MODE=jwt needs JWT_ISSUER and JWT_AUDIENCE');
  return {
    mode,
    ...(jwksUrl ? { jwksUrl } : { secret: secret! }),
    issuer,
    audience,
    userClaim: envString(env, 'JWT_USER_CLAIM', 'sub'),
    rolesClaim: envString(env, 'JWT_ROLES_CLAIM', 'roles'),
  };
}

function envBoolean(env: Env, name: string, fallback: boolean): boolean {
  return envChoice(env, name, ['true', 'false'] as const, fallback ? 'true' : 'false') === 'true';
}

export function loadConfig(env: Env = process.env): GatewayConfig {
  const auth = authConfig(env);
  const gatewaySecret = envSecret(env, 'GATEWAY_SECRET', auth.mode);
  const supergraphPath = resolve(envString(env, 'SUPERGRAPH_PATH', SUPERGRAPH_PATH));
  let supergraph: string;
  try {
    supergraph = readFileSync(supergraphPath, 'utf8');
  } catch {
    throw new ConfigError(`SUPERGRAPH_PATH=${supergraphPath} cannot be read; run npm run compose`);
  }
  return {
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envNumber(env, 'GATEWAY_PORT', 4000, { min: 0, max: 65535 }),
    supergraph,
    subgraphUrls: subgraphUrls(env),
    auth,
    gatewaySecret,
    sandbox: envBoolean(env, 'GRAPHQL_SANDBOX', env.NODE_ENV !== 'production'),
    limits: {
      maxDepth: envNumber(env, 'MAX_DEPTH', 12, { min: 1 }),
      maxAliases: envNumber(env, 'MAX_ALIASES', 20, { min: 0 }),
      maxTokens: envNumber(env, 'MAX_TOKENS', 5000, { min: 1 }),
      maxCost: envNumber(env, 'MAX_COST', 50_000, { min: 1 }),
      ratePerMinute: envNumber(env, 'RATE_LIMIT_PER_MINUTE', 1200, { min: 0 }),
    },
    redisUrl: envString(env, 'REDIS_URL'),
    subscriberQueueLimit: envNumber(env, 'SUBSCRIBER_QUEUE_LIMIT', 1000, { min: 1 }),
    catchUpSeconds: envNumber(env, 'CATCH_UP_SECONDS', 15, { min: 1 }),
  };
}
