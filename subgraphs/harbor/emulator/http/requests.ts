/** Requests counted by route and method, so tests can assert what a worker did (or did not) ask. */
export interface RequestCounts {
  total: number;
  /** Keyed `METHOD /route/{param}`, e.g. `GET /api/v2.0/replication/executions/{id}`. */
  byRoute: Record<string, number>;
}

export class RequestCounter {
  private counts = new Map<string, number>();
  private total = 0;

  count(route: string): void {
    this.total += 1;
    this.counts.set(route, (this.counts.get(route) ?? 0) + 1);
  }

  snapshot(): RequestCounts {
    return {
      total: this.total,
      byRoute: Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b))),
    };
  }

  reset(): void {
    this.counts.clear();
    this.total = 0;
  }
}
