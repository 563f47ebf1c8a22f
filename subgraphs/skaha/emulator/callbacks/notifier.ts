import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffMs, retryAfterMs, signedHeaders } from '@srcnet/service-kit';
import type { FaultInjector } from '../faults/faults.ts';
import type { Random } from '@srcnet/service-kit';
import type { Registration } from './registry.ts';

export interface DeliveryOptions {
  /** Attempts per notification, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per attempt. */
  timeoutMs: number;
  /** How long a notification picked for reordering waits for a successor to swap with. */
  reorderHoldMs: number;
}

export const DEFAULT_DELIVERY_OPTIONS: DeliveryOptions = {
  attempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  timeoutMs: 5_000,
  reorderHoldMs: 1_000,
};

export interface DeliveryStats {
  /** Notifications queued, one per event and target. */
  queued: number;
  /** Notifications a receiver accepted (a duplicate counts again). */
  delivered: number;
  /** HTTP requests made, retries included. */
  attempts: number;
  failedAttempts: number;
  /** Notifications given up on: attempts exhausted, or a 3xx or 4xx answer. */
  abandoned: number;
}

interface Notification {
  registration: Registration;
  eventId: string;
  body: string;
  /** Picked by the reorder fault: goes after its successor. */
  held: boolean;
}

interface Queue {
  items: Notification[];
  /** Resolves a hold waiting for the next notification. */
  wake?: () => void;
}

/**
 * Sends signed notifications. Each (registration, session) pair has its own queue, sent one at a
 * time, so a session's events arrive in order unless a fault reorders them; a failed attempt is
 * retried with exponential backoff and jitter before the queue moves on.
 */
export class CallbackNotifier {
  private queues = new Map<string, Queue>();
  private lifetime = new AbortController();
  readonly stats: DeliveryStats = { queued: 0, delivered: 0, attempts: 0, failedAttempts: 0, abandoned: 0 };

  constructor(
    private readonly options: DeliveryOptions,
    private readonly faults: FaultInjector,
    private readonly random: Random,
    /** A receiver answered 410 Gone: it wants no more notifications. */
    private readonly onGone: (registration: Registration) => void,
    private readonly logger?: Logger,
  ) {}

  send(registration: Registration, session: string, eventId: string, body: string): void {
    this.stats.queued++;
    if (this.faults.dropCallback()) return;
    const key = `${registration.id}/${session}`;
    let queue = this.queues.get(key);
    const start = !queue;
    if (!queue) this.queues.set(key, (queue = { items: [] }));
    queue.items.push({ registration, eventId, body, held: this.faults.reorderCallback() });
    queue.wake?.();
    if (start) void this.drain(key, queue, this.lifetime.signal);
  }

  /** Notifications queued or being retried. */
  get pending(): number {
    let count = 0;
    for (const queue of this.queues.values()) count += queue.items.length;
    return count;
  }

  resetStats(): void {
    for (const key of Object.keys(this.stats) as (keyof DeliveryStats)[]) this.stats[key] = 0;
  }

  /** Drops every queued and retrying notification: what a process restart loses. */
  forget(): void {
    this.lifetime.abort();
    this.lifetime = new AbortController();
    this.queues = new Map();
  }

  close(): void {
    this.forget();
  }

  private async drain(key: string, queue: Queue, signal: AbortSignal): Promise<void> {
    try {
      while (queue.items.length > 0) {
        signal.throwIfAborted();
        if (queue.items[0]!.held) {
          if (queue.items.length < 2) await this.hold(queue, signal);
          queue.items[0]!.held = false;
          if (queue.items.length >= 2) queue.items.unshift(queue.items.splice(1, 1)[0]!);
        }
        const next = queue.items[0]!;
        const delayMs = this.faults.callbackDelayMs();
        if (delayMs > 0) await sleep(delayMs, undefined, { signal });
        if ((await this.deliver(next, signal)) && this.faults.duplicateCallback())
          await this.deliver(next, signal);
        queue.items.shift();
      }
      if (this.queues.get(key) === queue) this.queues.delete(key);
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  private async hold(queue: Queue, signal: AbortSignal): Promise<void> {
    const controller = new AbortController();
    const both = AbortSignal.any([signal, controller.signal]);
    const woken = new Promise<void>((resolve) => (queue.wake = resolve));
    await Promise.race([
      woken,
      sleep(this.options.reorderHoldMs, undefined, { signal: both }).catch(() => {}),
    ]);
    controller.abort();
    delete queue.wake;
    signal.throwIfAborted();
  }

  /** True when the receiver accepted it. */
  private async deliver(notification: Notification, signal: AbortSignal): Promise<boolean> {
    const { registration, eventId, body } = notification;
    for (let attempt = 1; attempt <= this.options.attempts; attempt++) {
      this.stats.attempts++;
      let status = 0;
      let retryAfter: number | undefined;
      try {
        // Signed per attempt, so that a late retry is still inside the receiver's replay window.
        const response = await fetch(registration.url, {
          method: 'POST',
          headers: signedHeaders(registration.secret, body, eventId),
          body,
          // A receiver's redirect is not followed: it could point anywhere the emulator can reach.
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.options.timeoutMs)]),
        });
        status = response.status;
        retryAfter = retryAfterMs(response.headers.get('retry-after'));
        await response.body?.cancel();
      } catch (error) {
        signal.throwIfAborted();
        this.logger?.debug({ err: error, url: registration.url, eventId }, 'callback attempt failed');
      }
      if (status >= 200 && status < 300) {
        this.stats.delivered++;
        return true;
      }
      this.stats.failedAttempts++;
      if (status === 410) {
        this.logger?.info({ url: registration.url }, 'callback receiver answered 410: registration removed');
        this.onGone(registration);
        this.stats.abandoned++;
        return false;
      }
      if (status >= 300 && status < 500 && status !== 408 && status !== 429) break;
      if (attempt < this.options.attempts) {
        const backoff = backoffMs(attempt, this.options, this.random);
        await sleep(Math.max(backoff, retryAfter ?? 0), undefined, { signal });
      }
    }
    this.stats.abandoned++;
    this.logger?.warn({ url: registration.url, eventId }, 'callback abandoned');
    return false;
  }
}
