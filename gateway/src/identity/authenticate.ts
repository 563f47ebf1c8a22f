import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { AuthenticationError, identityFromDevToken, type Identity } from '@srcnet/service-kit';

/** How callers prove who they are (ARCHITECTURE.md, "Identity"). */
export type AuthConfig =
  | {
      mode: 'dev';
      /** Dev users who get the admin role. */
      admins: string[];
    }
  | {
      mode: 'jwt';
      /** Verify signatures against this JWKS (OIDC providers publish one)… */
      jwksUrl?: string;
      /** …or against this shared HMAC secret. */
      secret?: string;
      issuer: string;
      audience: string;
      /** Claim holding the user name. */
      userClaim: string;
      /** Claim holding the roles: a list or a space-separated string; a dotted path reaches into objects. */
      rolesClaim: string;
    };

/** The caller behind an Authorization header value; rejects with an AuthenticationError. */
export type Authenticate = (authorization: string | undefined) => Promise<Identity>;

export function createAuthenticate(config: AuthConfig): Authenticate {
  if (config.mode === 'dev') {
    return async (authorization) => identityFromDevToken(authorization, config.admins);
  }
  const key = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl))
    : new TextEncoder().encode(config.secret);
  return async (authorization) => {
    const token = /^Bearer (\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
    if (!token) throw new AuthenticationError('a bearer token is required: Authorization: Bearer <JWT>');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], {
        issuer: config.issuer,
        audience: config.audience,
      }));
    } catch (error) {
      // jose's messages name the failed check (expiry, issuer, audience, signature) and nothing internal.
      const reason = error instanceof joseErrors.JOSEError ? error.message : 'it cannot be verified';
      throw new AuthenticationError(`the bearer token is not valid: ${reason}`);
    }
    const user = claim(payload, config.userClaim);
    if (typeof user !== 'string' || !user)
      throw new AuthenticationError(`the bearer token has no "${config.userClaim}" claim naming the user`);
    return { user, roles: rolesOf(claim(payload, config.rolesClaim)) };
  };
}

function claim(payload: JWTPayload, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)?.[key], payload);
}

function rolesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((role): role is string => typeof role === 'string');
  return [];
}
