import { Counter, Registry } from 'prom-client';
import { inSpan, SpanKind } from '@srcnet/service-kit';
import type { SkahaApi } from './skaha/index.ts';

export interface WorkerMetrics {
  registry: Registry;
  backendRequests: Counter<'operation' | 'outcome'>;
  callbacksSent: Counter;
  callbacksFailed: Counter;
  skahaCallbacks: Counter<'outcome'>;
}

export function workerMetrics(): WorkerMetrics {
  const registry = new Registry();
  return {
    registry,
    backendRequests: new Counter({
      name: 'skaha_backend_requests_total',
      help: 'Skaha API calls by operation and outcome (a call counts once, retries included)',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    }),
    callbacksSent: new Counter({
      name: 'skaha_worker_callbacks_sent_total',
      help: 'Callbacks delivered to the broker',
      registers: [registry],
    }),
    callbacksFailed: new Counter({
      name: 'skaha_worker_callbacks_failed_total',
      help: 'Callback deliveries to the broker that failed and will be retried',
      registers: [registry],
    }),
    skahaCallbacks: new Counter({
      name: 'skaha_worker_session_callbacks_total',
      help: 'Status callbacks received from Skaha, by outcome (applied, unknown, rejected)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}

/** The same API, counting each call by method name and whether it succeeded, each in a span. */
export function countedApi(api: SkahaApi, counter: WorkerMetrics['backendRequests']): SkahaApi {
  return new Proxy(api, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const operation = String(property);
        return inSpan('skaha', `skaha ${operation}`, { kind: SpanKind.CLIENT }, async () => {
          try {
            const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            counter.inc({ operation, outcome: 'ok' });
            return result;
          } catch (error) {
            counter.inc({ operation, outcome: 'error' });
            throw error;
          }
        });
      };
    },
  });
}
