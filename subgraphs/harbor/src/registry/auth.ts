/**
 * Registry authentication: reading `WWW-Authenticate` challenges and the token exchange of the
 * Docker registry auth spec (GET realm?service&scope, with Basic credentials when we have them).
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header. Values may be quoted and contain
 * commas (`scope="repository:a/b:pull,push"`), so a plain split on commas is not enough.
 */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pattern = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = match[2] ?? '';
  let param: RegExpExecArray | null;
  while ((param = pattern.exec(rest)) !== null && param[0] !== '') {
    params[param[1]!.toLowerCase()] =
      param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : (param[3] ?? '');
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

export interface Credentials {
  username: string;
  password: string;
}

export function basicAuthorization({ username, password }: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

export interface Token {
  value: string;
  /** Epoch ms after which the token should not be reused. */
  expiresAt: number;
}

/** Reads a token endpoint's answer; the spec allows `token` or the OAuth name `access_token`. */
export function readTokenResponse(body: unknown, now = Date.now()): Token | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  const value =
    typeof record.token === 'string'
      ? record.token
      : typeof record.access_token === 'string'
        ? record.access_token
        : undefined;
  if (!value) return undefined;
  // The spec's default lifetime is 60 s; renew a little early so a token never expires in flight.
  const lifetime = typeof record.expires_in === 'number' && record.expires_in > 0 ? record.expires_in : 60;
  return { value, expiresAt: now + Math.max(1, lifetime - 10) * 1000 };
}
