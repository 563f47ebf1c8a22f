import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { GraphQLError } from 'graphql';
import type { IdentityContext } from '../identity/plugin.ts';

const WINDOW_MS = 60_000;

/**
 * At most `perMinute` operations (queries, mutations, subscription starts) per identity in each
 * minute, counted in this gateway instance. The gateway's own fetches for the fan-out are not
 * counted: they serve subscriptions already admitted.
 */
export function useRateLimit(perMinute: number): GatewayPlugin {
  const windows = new Map<string, { start: number; count: number }>();

  function refusal(context: Partial<IdentityContext>): GraphQLError | undefined {
    const { identity } = context;
    if (!identity || context.internal) return undefined;
    const now = Date.now();
    let window = windows.get(identity.user);
    if (!window || now - window.start >= WINDOW_MS) {
      if (!window && windows.size >= 100_000) sweep(now);
      window = { start: now, count: 0 };
      windows.set(identity.user, window);
    }
    window.count += 1;
    if (window.count <= perMinute) return undefined;
    const retryAfter = Math.ceil((window.start + WINDOW_MS - now) / 1000);
    return new GraphQLError(
      `rate limit: at most ${perMinute} operations a minute for user ${identity.user}; retry in ${retryAfter} s`,
      {
        extensions: {
          code: 'RATE_LIMITED',
          http: { status: 429, headers: { 'retry-after': String(retryAfter) } },
        },
      },
    );
  }

  function sweep(now: number) {
    for (const [user, window] of windows) if (now - window.start >= WINDOW_MS) windows.delete(user);
  }

  return {
    onExecute({ args, setResultAndStopExecution }) {
      const error = refusal(args.contextValue as Partial<IdentityContext>);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const error = refusal(args.contextValue as Partial<IdentityContext>);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
