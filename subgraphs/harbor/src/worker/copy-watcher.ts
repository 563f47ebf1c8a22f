/**
 * The batched copy watcher. With webhooks off it follows every copy in flight; with webhooks on
 * the same watcher reconciles, at start-up and every `HARBOR_RECONCILE_SECONDS`, so that a lost
 * webhook delays a copy's end by at most that interval and one pass. A pass is one
 * `GET /replication/executions` for all replication copies, plus one artifact read per image
 * copied by proxy cache (Harbor v2.0 lists artifacts only per repository).
 */
import type { HarborApi } from '../harbor/index.ts';
import type { Track } from '../images/locator.ts';
import type { ImageWorker } from './image-worker.ts';

export class CopyWatcher {
  private running: Promise<void> | undefined;

  constructor(
    private readonly harbor: HarborApi,
    private readonly worker: ImageWorker,
    private readonly track: Track,
  ) {}

  /** One pass; a pass asked for while one is running joins it. */
  pass(): Promise<void> {
    this.running ??= this.reconcile().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reconcile(): Promise<void> {
    const inFlight = await this.worker.executionsInFlight();
    if (inFlight.length > 0) {
      const executions = await this.track('harbor.listReplicationExecutions', () =>
        this.harbor.listReplicationExecutions({ pageSize: 100 }),
      );
      const wanted = new Set(inFlight);
      for (const execution of executions) {
        if (!wanted.has(execution.id) || execution.status === 'InProgress') continue;
        await this.worker.onExecutionDone(
          execution.id,
          execution.status === 'Succeed'
            ? { ok: true }
            : {
                ok: false,
                message: `Harbor replication execution ${execution.id} ended ${execution.status}${execution.status_text ? `: ${execution.status_text}` : ''}`,
              },
        );
      }
    }
    await this.worker.recheckProxyCopies();
  }
}
