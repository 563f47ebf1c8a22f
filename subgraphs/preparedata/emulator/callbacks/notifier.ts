import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, retryAfterMs, signedHeaders } from '@srcnet/service-kit';
import type { WireCallbackEvent } from '../../src/preparedata/mapping.ts';
import type { CallbackRegistration } from '../../src/preparedata/types.ts';
import type { FaultInjector } from '../faults/faults.ts';
import type { Random } from '@srcnet/service-kit';
import type { Job } from '../staging/engine.ts';

export interface CallbackOptions {
  /** Progress events closer than this to the job's previous event are skipped. */
  minIntervalMs: number;
  /** ...and so are those that moved less than this many percent (0 turns the rule off). */
  minPercentStep: number;
  /** Delivery attempts per event, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt. */
  timeoutMs: number;
  /** How long a reordered event waits for a successor to overtake it. */
  reorderHoldMs: number;
}

export const DEFAULT_CALLBACK_OPTIONS: CallbackOptions = {
  minIntervalMs: 1000,
  minPercentStep: 0,
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  timeoutMs: 5000,
  reorderHoldMs: 250,
};

export interface CallbackStats {
  /** Events created (each with a new sequence number). */
  generated: number;
  /** Progress changes not turned into events by the throttle. */
  throttled: number;
  /** Queued progress events replaced by a newer one before they were sent. */
  superseded: number;
  attempts: number;
  delivered: number;
  failedAttempts: number;
  /** Events the receiver refused with a 4xx; not retried. */
  rejected: number;
  /** Events abandoned after the last attempt. */
  givenUp: number;
  /** Events pending when the service restarted. */
  lost: number;
}

interface Pending {
  event: WireCallbackEvent;
  body: string;
  registration: CallbackRegistration;
}

interface JobQueue {
  items: Pending[];
  busy: boolean;
}

const FINAL = new Set(['FAILED', 'RELEASED', 'EXPIRED']);

function emptyStats(): CallbackStats {
  return {
    generated: 0,
    throttled: 0,
    superseded: 0,
    attempts: 0,
    delivered: 0,
    failedAttempts: 0,
    rejected: 0,
    givenUp: 0,
    lost: 0,
  };
}

/**
 * The proposed callback extension: signed POSTs on every state change and on (throttled)
 * progress, delivered one at a time per job so that they arrive in sequence order.
 */
export class CallbackNotifier {
  private readonly clients = new Map<string, CallbackRegistration>();
  private readonly queues = new Map<string, JobQueue>();
  /** Time and bytes of each job's last event, for the progress throttle. */
  private readonly last = new Map<string, { at: number; bytesDone: number }>();
  private abort = new AbortController();
  stats: CallbackStats = emptyStats();

  constructor(
    private readonly options: CallbackOptions,
    private readonly faults: FaultInjector,
    private readonly random: Random,
    private readonly now: () => number = Date.now,
  ) {}

  /** One registration per client (owner) for all of its jobs; a job's own one takes precedence. */
  setClientRegistration(owner: string, registration: CallbackRegistration | undefined): void {
    if (registration) this.clients.set(owner, registration);
    else this.clients.delete(owner);
  }

  clientRegistration(owner: string): CallbackRegistration | undefined {
    return this.clients.get(owner);
  }

  notify(job: Job, type: 'state' | 'progress'): void {
    const registration = job.callback ?? this.clients.get(job.owner);
    if (!registration) return;
    const now = this.now();
    const last = this.last.get(job.id);
    if (type === 'progress' && last) {
      const percent = job.bytesTotal > 0 ? ((job.bytesDone - last.bytesDone) * 100) / job.bytesTotal : 100;
      if (now - last.at < this.options.minIntervalMs || percent < this.options.minPercentStep) {
        this.stats.throttled++;
        return;
      }
    }
    if (FINAL.has(job.state)) this.last.delete(job.id);
    else this.last.set(job.id, { at: now, bytesDone: job.bytesDone });
    const sequence = ++job.sequence;
    const event: WireCallbackEvent = {
      event_id: `${job.id}:${sequence}`,
      job_id: job.id,
      sequence,
      type,
      state: job.state,
      bytes_done: job.bytesDone,
      bytes_total: job.bytesTotal,
      time: new Date(now).toISOString(),
      message: job.message,
      expires_at: new Date(job.expiresAt).toISOString(),
    };
    this.stats.generated++;
    if (this.faults.dropCallback()) return;
    let queue = this.queues.get(job.id);
    if (!queue) {
      queue = { items: [], busy: false };
      this.queues.set(job.id, queue);
    }
    const pending: Pending = { event, body: JSON.stringify(event), registration };
    const tail = queue.items[queue.items.length - 1];
    // Only the newest progress matters, so a backlog behind a slow receiver does not grow.
    if (type === 'progress' && tail?.event.type === 'progress') {
      queue.items[queue.items.length - 1] = pending;
      this.stats.superseded++;
    } else queue.items.push(pending);
    if (!queue.busy) void this.drain(job.id, queue);
  }

  /** A restart loses what was only in memory: queued and retrying deliveries, the throttle. */
  forgetPending(): void {
    for (const queue of this.queues.values()) this.stats.lost += queue.items.length + (queue.busy ? 1 : 0);
    this.abort.abort();
    this.abort = new AbortController();
    this.queues.clear();
    this.last.clear();
  }

  resetStats(): void {
    this.stats = emptyStats();
  }

  close(): void {
    this.abort.abort();
    this.queues.clear();
  }

  private async drain(jobId: string, queue: JobQueue): Promise<void> {
    const signal = this.abort.signal;
    queue.busy = true;
    try {
      while (queue.items.length > 0) {
        let item = queue.items.shift()!;
        if (this.faults.reorderCallback()) {
          if (queue.items.length === 0) await sleep(this.options.reorderHoldMs, undefined, { signal });
          const next = queue.items.shift();
          if (next) {
            queue.items.unshift(item);
            item = next;
          }
        }
        const delayMs = this.faults.callbackDelayMs();
        if (delayMs > 0) await sleep(delayMs, undefined, { signal });
        await this.deliver(item, signal);
        if (this.faults.duplicateCallback()) await this.deliver(item, signal);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      queue.busy = false;
      if (queue.items.length === 0 && this.queues.get(jobId) === queue) this.queues.delete(jobId);
    }
  }

  /** Attempts one event until it is delivered, refused or out of attempts. */
  private async deliver(item: Pending, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; attempt <= this.options.maxAttempts; attempt++) {
      signal.throwIfAborted();
      this.stats.attempts++;
      let retryAfter: number | undefined;
      try {
        const response = await fetch(item.registration.url, {
          method: 'POST',
          headers: signedHeaders(item.registration.secret, item.body, item.event.event_id, this.now()),
          body: item.body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]),
        });
        await response.arrayBuffer();
        if (response.ok) {
          this.stats.delivered++;
          return;
        }
        if (response.status < 500 && response.status !== 408 && response.status !== 429) {
          this.stats.rejected++;
          return;
        }
        retryAfter = retryAfterMs(response.headers.get('retry-after'));
      } catch (error) {
        if (signal.aborted) throw error;
      }
      this.stats.failedAttempts++;
      if (attempt === this.options.maxAttempts) break;
      const delay = retryAfter ?? backoffMs(attempt, this.options, this.random);
      await sleep(Math.min(delay, this.options.maxDelayMs), undefined, { signal });
    }
    this.stats.givenUp++;
  }
}
