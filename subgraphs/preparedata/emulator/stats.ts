import type { OperationName } from '../src/preparedata/mapping.ts';

export interface RequestCounts {
  total: number;
  /** Keyed `"GET /v1/data/stage/:jobId"`; unmatched paths count under `"<method> <unmatched>"`. */
  byRoute: Record<string, number>;
  byOperation: Partial<Record<OperationName, number>>;
  /**
   * Per job id, per operation; a list call counts once for every job it names, a submit once for
   * the job it returned.
   */
  byJob: Record<string, Partial<Record<OperationName, number>>>;
}

/** Counts API requests (faulted ones included) so tests can assert how a worker talks. */
export class RequestStats {
  private counts: RequestCounts = RequestStats.empty();

  private static empty(): RequestCounts {
    return { total: 0, byRoute: {}, byOperation: {}, byJob: {} };
  }

  record(
    method: string,
    route: string | undefined,
    operation: OperationName | undefined,
    jobIds: string[],
  ): void {
    const counts = this.counts;
    counts.total++;
    const key = `${method} ${route ?? '<unmatched>'}`;
    counts.byRoute[key] = (counts.byRoute[key] ?? 0) + 1;
    if (!operation) return;
    counts.byOperation[operation] = (counts.byOperation[operation] ?? 0) + 1;
    for (const id of jobIds) this.recordForJob(id, operation);
  }

  /** Counts a request for a job only known once handled (a submit). */
  recordForJob(jobId: string, operation: OperationName): void {
    const perJob = (this.counts.byJob[jobId] ??= {});
    perJob[operation] = (perJob[operation] ?? 0) + 1;
  }

  snapshot(): RequestCounts {
    return structuredClone(this.counts);
  }

  reset(): void {
    this.counts = RequestStats.empty();
  }
}
