import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import type { ExecutionResult } from 'graphql';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FanoutObserver } from '../fanout/hub.ts';

/** The gateway's Prometheus metrics (served at /metrics). */
export interface GatewayMetrics {
  registry: Registry;
  requests: Counter;
  errors: Counter<'code'>;
  /** Counts into the registry what the fan-out does. */
  fanout: FanoutObserver;
  feedConnected: Gauge;
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  const options = <T extends string>(name: string, help: string, labelNames: T[] = []) => ({
    name,
    help,
    labelNames,
    registers: [registry],
  });
  const requests = new Counter(
    options('gateway_requests_total', 'GraphQL operations received from clients (HTTP, SSE, WebSocket)'),
  );
  const errors = new Counter(
    options('gateway_errors_total', 'Errors returned to clients, by code', ['code']),
  );
  const active = new Gauge(
    options('gateway_subscriptions_active', 'Open executionStepChanged subscriptions'),
  );
  const delivered = new Counter(
    options('gateway_events_delivered_total', 'Subscription events handed to subscribers'),
  );
  const latency = new Histogram({
    ...options('gateway_event_delivery_seconds', 'From a committed change to its hand-over to a subscriber'),
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  const notices = new Counter(
    options('gateway_change_notices_total', 'Step changes received from the change feed'),
  );
  const fetches = new Counter(
    options(
      'gateway_fanout_fetches_total',
      'Fetches the fan-out ran, each shared by every subscriber of a group',
    ),
  );
  const feedConnected = new Gauge(
    options(
      'gateway_change_feed_connected',
      '1 while the change feed (the broker stream or pub/sub) is connected',
    ),
  );
  return {
    registry,
    requests,
    errors,
    feedConnected,
    fanout: {
      subscribed: () => active.inc(),
      unsubscribed: () => active.dec(),
      notice: () => notices.inc(),
      fetch: () => fetches.inc(),
      delivered: (at) => {
        delivered.inc();
        latency.observe(Math.max(0, Date.now() - at) / 1000);
      },
    },
  };
}

/** Counts client operations and the errors returned to them, and serves GET /metrics. */
export function useMetrics(metrics: GatewayMetrics): GatewayPlugin {
  const { requests, errors } = metrics;
  const countErrors = (result: ExecutionResult) => {
    for (const error of result.errors ?? [])
      errors.inc({ code: String(error.extensions?.code ?? 'INTERNAL') });
  };
  return {
    onRequest({ url, request, endResponse, fetchAPI }) {
      if (url.pathname !== '/metrics' || request.method !== 'GET') return;
      return metrics.registry
        .metrics()
        .then((text) =>
          endResponse(
            new fetchAPI.Response(text, { headers: { 'content-type': metrics.registry.contentType } }),
          ),
        );
    },
    onParams() {
      requests.inc();
    },
    onExecutionResult({ result }) {
      if (Array.isArray(result)) result.forEach(countErrors);
      else if (result && !(Symbol.asyncIterator in result)) countErrors(result as ExecutionResult);
    },
  };
}
