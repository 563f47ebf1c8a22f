import type { Operation } from './operations.ts';

export interface RequestCounts {
  total: number;
  /** `METHOD /path/{param}` → requests. */
  byRoute: Record<string, number>;
  byOperation: Partial<Record<Operation, number>>;
  /** Session id → operation → requests, for requests naming a session (creates count under the new id). */
  bySession: Record<string, Partial<Record<Operation, number>>>;
}

/** Counts API requests (faulted ones too), so that tests can assert how a client behaves. */
export class RequestCounter {
  private counts: RequestCounts = RequestCounter.empty();

  private static empty(): RequestCounts {
    return { total: 0, byRoute: {}, byOperation: {}, bySession: {} };
  }

  request(route: string, operation: Operation): void {
    this.counts.total++;
    this.counts.byRoute[route] = (this.counts.byRoute[route] ?? 0) + 1;
    this.counts.byOperation[operation] = (this.counts.byOperation[operation] ?? 0) + 1;
  }

  session(id: string, operation: Operation): void {
    const perSession = (this.counts.bySession[id] ??= {});
    perSession[operation] = (perSession[operation] ?? 0) + 1;
  }

  snapshot(): RequestCounts {
    return structuredClone(this.counts);
  }

  reset(): void {
    this.counts = RequestCounter.empty();
  }
}
