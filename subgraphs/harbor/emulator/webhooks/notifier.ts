/**
 * Outbound webhook deliveries, as Harbor's jobservice makes them: one POST per target, the
 * target's auth_header as the Authorization header, any non-2xx a failure, retried a few times
 * (`JOBSERVICE_WEBHOOK_JOB_MAX_RETRY`, default 3). Deliveries live in memory: restart() loses
 * whatever was queued or retrying.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultInjector } from '../faults/faults.ts';

export interface Delivery {
  /** Groups deliveries for reordering: one queue per policy target. */
  targetKey: string;
  address: string;
  authHeader?: string;
  contentType: string;
  body: string;
}

export interface DeliveryTiming {
  /** Further attempts after a failure (default 3). */
  maxRetries: number;
  /** Wait before the first retry, doubled each time (already time-scaled). */
  retryDelayMs: number;
  /** Per-attempt limit, real milliseconds. */
  timeoutMs: number;
  /** How long a delivery held back for reordering waits for a successor (real ms). */
  reorderHoldMs: number;
}

export interface DeliveryStats {
  /** Deliveries asked for (one per event and target). */
  deliveries: number;
  attempts: number;
  failedAttempts: number;
  delivered: number;
  /** Given up after the last retry. */
  abandoned: number;
  dropped: number;
  duplicated: number;
  delayed: number;
  reordered: number;
}

function emptyStats(): DeliveryStats {
  return {
    deliveries: 0,
    attempts: 0,
    failedAttempts: 0,
    delivered: 0,
    abandoned: 0,
    dropped: 0,
    duplicated: 0,
    delayed: 0,
    reordered: 0,
  };
}

export class WebhookNotifier {
  stats = emptyStats();
  /** Aborted by forget(): everything queued, waiting or in flight. */
  private generation = new AbortController();
  private readonly held = new Map<string, { delivery: Delivery; timer: NodeJS.Timeout }>();
  private inFlight = 0;

  constructor(
    private readonly faults: FaultInjector,
    private readonly timing: DeliveryTiming,
    private readonly log?: (message: string) => void,
  ) {}

  get pending(): number {
    return this.inFlight + this.held.size;
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  enqueue(delivery: Delivery): void {
    this.stats.deliveries += 1;
    const fault = this.faults.forDelivery();
    if (fault.drop) {
      this.stats.dropped += 1;
      return;
    }
    const held = this.held.get(delivery.targetKey);
    if (held) {
      // This one overtakes the delivery that was held back for it, which follows once it is done.
      clearTimeout(held.timer);
      this.held.delete(delivery.targetKey);
      const generation = this.generation;
      this.inFlight += 1;
      void this.start(delivery, fault.delayMs, fault.duplicate).then(() => {
        this.inFlight -= 1;
        // A restart in between forgot the held delivery too.
        if (generation === this.generation) return this.start(held.delivery, 0, false);
      });
      return;
    }
    if (fault.reorder) {
      this.stats.reordered += 1;
      const timer = setTimeout(() => {
        this.held.delete(delivery.targetKey);
        void this.start(delivery, 0, fault.duplicate);
      }, this.timing.reorderHoldMs);
      timer.unref();
      this.held.set(delivery.targetKey, { delivery, timer });
      return;
    }
    void this.start(delivery, fault.delayMs, fault.duplicate);
  }

  /** Resolves when the first copy of the delivery has succeeded or been given up. */
  private start(delivery: Delivery, delayMs: number, duplicate: boolean): Promise<void> {
    if (delayMs > 0) this.stats.delayed += 1;
    if (duplicate) {
      this.stats.duplicated += 1;
      void this.run(delivery, delayMs);
    }
    return this.run(delivery, delayMs);
  }

  private async run(delivery: Delivery, delayMs: number): Promise<void> {
    const signal = this.generation.signal;
    this.inFlight += 1;
    try {
      if (delayMs > 0) await sleep(delayMs, undefined, { signal });
      for (let attempt = 0; attempt <= this.timing.maxRetries; attempt++) {
        if (attempt > 0) await sleep(this.timing.retryDelayMs * 2 ** (attempt - 1), undefined, { signal });
        this.stats.attempts += 1;
        if (await this.attempt(delivery, signal)) {
          this.stats.delivered += 1;
          return;
        }
        this.stats.failedAttempts += 1;
      }
      this.stats.abandoned += 1;
      this.log?.(`webhook to ${delivery.address} abandoned after ${this.timing.maxRetries + 1} attempts`);
    } catch (error) {
      // An abort is restart() forgetting the delivery; anything else must not crash the server.
      if (!signal.aborted) this.log?.(`webhook to ${delivery.address} failed: ${String(error)}`);
    } finally {
      this.inFlight -= 1;
    }
  }

  private async attempt(delivery: Delivery, signal: AbortSignal): Promise<boolean> {
    try {
      const response = await fetch(delivery.address, {
        method: 'POST',
        headers: {
          'content-type': delivery.contentType,
          ...(delivery.authHeader ? { authorization: delivery.authHeader } : {}),
        },
        body: delivery.body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timing.timeoutMs)]),
      });
      await response.body?.cancel();
      return response.status >= 200 && response.status < 300;
    } catch (error) {
      if (signal.aborted) throw error;
      return false;
    }
  }

  /** What a restart does: every queued, held, waiting or in-flight delivery is lost. */
  forget(): void {
    this.generation.abort();
    this.generation = new AbortController();
    for (const { timer } of this.held.values()) clearTimeout(timer);
    this.held.clear();
  }
}
