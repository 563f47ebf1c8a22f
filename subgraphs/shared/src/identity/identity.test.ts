import { describe, expect, it } from 'vitest';
import { AuthenticationError, IDENTITY_SIGNATURE_HEADER, identityOf, signIdentity } from './identity.ts';

const options = { mode: 'jwt' as const, gatewaySecret: 'gw-secret', admins: ['root'] };

describe('identity', () => {
  it('trusts an identity the gateway signed', () => {
    const headers = signIdentity('gw-secret', { user: 'alice', roles: [] });
    expect(identityOf(headers, options)).toEqual({ user: 'alice', roles: [] });
  });

  it('refuses a forged or missing signature outside dev mode', () => {
    const headers = signIdentity('other-secret', { user: 'mallory', roles: ['admin'] });
    expect(() => identityOf(headers, options)).toThrow(IDENTITY_SIGNATURE_HEADER);
    expect(() => identityOf({ authorization: 'Bearer dev:alice' }, options)).toThrow(AuthenticationError);
  });

  it('refuses a stale signed identity', () => {
    const headers = signIdentity('gw-secret', { user: 'alice', roles: [] }, Date.now() - 3_600_000);
    expect(() => identityOf(headers, options)).toThrow('expired');
  });

  it('reads dev tokens in dev mode, with admins by name', () => {
    const dev = { ...options, mode: 'dev' as const };
    expect(identityOf({ authorization: 'Bearer dev:bob' }, dev)).toEqual({ user: 'bob', roles: [] });
    expect(identityOf({ authorization: 'Bearer dev:root' }, dev)).toEqual({ user: 'root', roles: ['admin'] });
    expect(identityOf({}, dev)).toEqual({ user: 'dev', roles: [] });
    expect(() => identityOf({ authorization: 'Bearer something' }, dev)).toThrow('Bearer dev:<user>');
  });
});
