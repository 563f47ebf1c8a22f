/**
 * The batched watcher: one `GET /session` per interval for all tracked sessions, never one poll
 * per session. The interval is short while something is being created, starting or stopping,
 * long while everything is steady, and backs off after errors. Where Skaha sends callbacks the
 * same watcher reconciles: at start and every `SKAHA_RECONCILE_SECONDS` it lists once, so that a
 * lost callback (or a Skaha restart) delays a change by at most that interval and one listing.
 */
import type { Logger } from 'pino';
import type { SkahaApi } from '../skaha/index.ts';
import type { SessionTracker } from './tracker.ts';

export interface WatcherTiming {
  fastMs: number;
  slowMs: number;
  maxBackoffMs: number;
}

/** The timing of the reconciling watcher when callbacks are on; a 0 interval lists at start only. */
export function reconcileTiming(watcher: { reconcileMs: number; maxBackoffMs: number }): WatcherTiming {
  const every = watcher.reconcileMs > 0 ? watcher.reconcileMs : Infinity;
  return { fastMs: every, slowMs: every, maxBackoffMs: watcher.maxBackoffMs };
}

export class BatchedWatcher {
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  private running: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;
  /** Listings made, for tests and metrics. */
  listings = 0;

  constructor(
    private readonly api: SkahaApi,
    private readonly tracker: SessionTracker,
    private readonly log: Logger,
    /** With callbacks the steady interval is the safety-net interval. */
    private readonly timing: WatcherTiming,
  ) {}

  start(firstDelayMs: number): void {
    this.schedule(firstDelayMs);
  }

  /** Something changed: look within the fast interval, without ever listing more often than that. */
  nudge(): void {
    this.schedule(this.timing.fastMs);
  }

  /** Lists now (e.g. after Skaha restarted); one listing at a time. */
  async runNow(): Promise<void> {
    clearTimeout(this.timer);
    this.dueAt = Infinity;
    await this.tick();
  }

  private schedule(delayMs: number): void {
    // An infinite interval means no next listing (setTimeout would take it as 1 ms).
    if (this.stopped || !Number.isFinite(delayMs) || Date.now() + delayMs >= this.dueAt) return;
    clearTimeout(this.timer);
    this.dueAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.dueAt = Infinity;
      void this.tick();
    }, delayMs);
  }

  private async tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    let next: number;
    try {
      if ((await this.tracker.watched()).length > 0) {
        const listedAt = Date.now();
        this.listings++;
        const listing = await this.api.listSessions();
        await this.tracker.reconcile(listing, listedAt);
      }
      this.failures = 0;
      next = (await this.tracker.busy()) ? this.timing.fastMs : this.timing.slowMs;
    } catch (error) {
      this.failures++;
      next = Math.min(this.timing.maxBackoffMs, this.timing.fastMs * 2 ** this.failures);
      this.log.warn({ err: error, retryInMs: next }, 'listing Skaha sessions failed');
    }
    this.schedule(next);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
