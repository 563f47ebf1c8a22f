import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { contextFrom, inSpan, SpanKind, traceHeaders } from '@srcnet/service-kit';

/**
 * Traces each request through the gateway: a server span that continues the caller's
 * `traceparent`, a client span per subgraph request, and the `traceparent` of that span on the
 * subgraph's HTTP request, so that the broker and the workers carry on the same trace.
 * Set on the fetch rather than on the subgraph request (as identity is): requests in flight are
 * shared only when their subgraph requests are identical, and a per-request header would end that.
 */
export function useTracing(): GatewayPlugin {
  return {
    instrumentation: {
      request: ({ request }, wrapped) =>
        inSpan(
          'gateway',
          `${request.method} ${new URL(request.url).pathname}`,
          { kind: SpanKind.SERVER, parent: contextFrom(Object.fromEntries(request.headers)) },
          async () => {
            await wrapped();
          },
        ),
      subgraphExecute: ({ subgraphName }, wrapped) =>
        inSpan(
          'gateway',
          `subgraph ${subgraphName}`,
          { kind: SpanKind.CLIENT, attributes: { 'graphql.subgraph': subgraphName } },
          async () => {
            await wrapped();
          },
        ),
    },
    onFetch({ options, setOptions }) {
      const trace = traceHeaders();
      if (!trace.traceparent) return;
      setOptions({ ...options, headers: { ...Object.fromEntries(new Headers(options.headers)), ...trace } });
    },
  };
}
