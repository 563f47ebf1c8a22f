import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Who is calling. The gateway establishes it (dev tokens or verified JWTs) and passes it to the
 * subgraphs in a header it signs, so that a subgraph trusts an identity only when the gateway
 * vouched for it. In dev mode a subgraph also reads `Authorization: Bearer dev:<user>` itself.
 */
export interface Identity {
  user: string;
  roles: string[];
}

export const IDENTITY_HEADER = 'x-srcnet-identity';
export const IDENTITY_SIGNATURE_HEADER = 'x-srcnet-identity-signature';
const MAX_AGE_SECONDS = 300;

export type AuthMode = 'dev' | 'jwt';

export class AuthenticationError extends Error {
  readonly statusCode = 401;
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

export const isAdmin = (identity: Identity) => identity.roles.includes('admin');

/** `dev:<user>` tokens; users listed as admins get the admin role. */
export function identityFromDevToken(authorization: string | undefined, admins: readonly string[]): Identity {
  if (!authorization) return { user: 'dev', roles: admins.includes('dev') ? ['admin'] : [] };
  const match = /^Bearer dev:([A-Za-z0-9._@-]{1,64})$/.exec(authorization.trim());
  if (!match)
    throw new AuthenticationError('in dev mode the Authorization header must be "Bearer dev:<user>"');
  const user = match[1]!;
  return { user, roles: admins.includes(user) ? ['admin'] : [] };
}

/** Headers that carry an identity from the gateway to a subgraph. */
export function signIdentity(secret: string, identity: Identity, now = Date.now()): Record<string, string> {
  const payload = Buffer.from(JSON.stringify({ ...identity, iat: Math.floor(now / 1000) })).toString(
    'base64url',
  );
  return {
    [IDENTITY_HEADER]: payload,
    [IDENTITY_SIGNATURE_HEADER]: createHmac('sha256', secret).update(payload).digest('base64url'),
  };
}

type Headers = Record<string, string | string[] | undefined>;
const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The identity the gateway signed, or undefined when the request carries none. */
export function verifiedIdentity(secret: string, headers: Headers, now = Date.now()): Identity | undefined {
  const payload = first(headers[IDENTITY_HEADER]);
  const signature = first(headers[IDENTITY_SIGNATURE_HEADER]);
  if (!payload && !signature) return undefined;
  if (!payload || !signature)
    throw new AuthenticationError(`${IDENTITY_HEADER} and ${IDENTITY_SIGNATURE_HEADER} go together`);
  const expected = Buffer.from(createHmac('sha256', secret).update(payload).digest('base64url'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new AuthenticationError(
      `${IDENTITY_SIGNATURE_HEADER} does not match; only the gateway may call this service`,
    );
  }
  let parsed: { user?: unknown; roles?: unknown; iat?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new AuthenticationError(`${IDENTITY_HEADER} is not readable`);
  }
  if (typeof parsed.user !== 'string' || !Array.isArray(parsed.roles) || typeof parsed.iat !== 'number') {
    throw new AuthenticationError(`${IDENTITY_HEADER} lacks user, roles or iat`);
  }
  if (Math.abs(now / 1000 - parsed.iat) > MAX_AGE_SECONDS)
    throw new AuthenticationError(`${IDENTITY_HEADER} has expired`);
  return {
    user: parsed.user,
    roles: parsed.roles.filter((role): role is string => typeof role === 'string'),
  };
}

export interface IdentityOptions {
  mode: AuthMode;
  /** The secret the gateway signs identities with. */
  gatewaySecret: string;
  admins: readonly string[];
}

/**
 * The caller of a subgraph or REST request: the gateway's signed identity when present; else, in
 * dev mode, the dev bearer token (or `dev`); else, outside dev mode, an AuthenticationError.
 */
export function identityOf(headers: Headers, options: IdentityOptions): Identity {
  const signed = verifiedIdentity(options.gatewaySecret, headers);
  if (signed) return signed;
  if (options.mode === 'dev') return identityFromDevToken(first(headers.authorization), options.admins);
  throw new AuthenticationError('this service accepts only requests signed by the gateway');
}
