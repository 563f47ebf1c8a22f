import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import type { IdentityContext } from '../identity/plugin.ts';
import type { Fanout } from './hub.ts';
import { stepOperation } from './operation.ts';

/**
 * Serves `executionStepChanged` subscriptions from the shared fan-out instead of opening one
 * upstream subscription per client. Any other subscription keeps the runtime's own path.
 */
export function useStepFanout(fanout: Fanout): GatewayPlugin {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const operation = stepOperation(args.document, args.operationName);
      if (!operation) return;
      const { identity } = args.contextValue as unknown as IdentityContext;
      setSubscribeFn(
        (subscription) =>
          fanout.subscribe(operation, subscription.variableValues ?? {}, identity) as ReturnType<
            Parameters<typeof setSubscribeFn>[0]
          >,
      );
    },
  };
}
