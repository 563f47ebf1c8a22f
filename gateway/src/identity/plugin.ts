import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { GraphQLError } from 'graphql';
import { AuthenticationError, signIdentity, type Identity } from '@srcnet/service-kit';
import type { Authenticate } from './authenticate.ts';

/** What the identity plugin adds to every operation's context. */
export interface IdentityContext {
  identity: Identity;
  /** Set on operations the gateway runs itself (the fan-out's fetches), which limits do not count. */
  internal?: boolean;
}

type Headers = Record<string, string | undefined>;

/**
 * Establishes the caller of every operation (from the Authorization header, or from graphql-ws
 * `connectionParams.authorization`, which the runtime merges into the headers) and signs it onto
 * every subgraph request, so that subgraphs trust an identity only when this gateway vouched for it.
 * A context that already carries an identity (the fan-out's own fetches) is left as it is.
 */
export function useIdentity(options: { authenticate: Authenticate; gatewaySecret: string }): GatewayPlugin {
  const signed = signedHeadersCache(options.gatewaySecret);
  return {
    onContextBuilding({ context, extendContext }) {
      const current = context as Partial<IdentityContext> & { headers?: Headers };
      if (current.identity) return;
      const headers = current.headers ?? {};
      return options.authenticate(headers.authorization ?? headers.Authorization).then(
        (identity) => extendContext({ identity } as never),
        (error: unknown) => {
          if (!(error instanceof AuthenticationError)) throw error;
          throw new GraphQLError(error.message, {
            extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
          });
        },
      );
    },
    // On the subgraph request itself, not on its fetch: the HTTP executor shares identical requests
    // in flight, and only headers set here are part of what makes two requests identical. Set at
    // fetch time, two users' same query would share one answer.
    onSubgraphExecute({ executionRequest, setExecutionRequest }) {
      const identity = (executionRequest.context as Partial<IdentityContext> | undefined)?.identity;
      if (!identity) return;
      const extensions = executionRequest.extensions ?? {};
      setExecutionRequest({
        ...executionRequest,
        extensions: { ...extensions, headers: { ...extensions.headers, ...signed(identity) } },
      });
    },
  };
}

/**
 * Signed headers per identity, reused for a minute: a signature stays valid for five, and signing
 * on every subgraph request would cost an HMAC each.
 */
function signedHeadersCache(secret: string) {
  const REUSE_MS = 60_000;
  const cache = new Map<string, { headers: Record<string, string>; at: number }>();
  return (identity: Identity) => {
    const key = `${identity.user}\u0000${identity.roles.join(',')}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && now - hit.at < REUSE_MS) return hit.headers;
    if (cache.size > 10_000) cache.clear();
    const entry = { headers: signIdentity(secret, identity, now), at: now };
    cache.set(key, entry);
    return entry.headers;
  };
}
