/**
 * Callbacks to the broker, written to SQLite before they are sent, so that a restart loses
 * none: delivered in sequence order per component, retried with backoff until a 2xx.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';
import {
  contextFrom,
  currentTraceparent,
  failSpan,
  inSpan,
  signedHeaders,
  SpanKind,
  traceHeaders,
} from '@srcnet/service-kit';
import type { Db } from '../store/store.ts';

export type CallbackFields = Omit<Ivoa.ComponentCallback, 'eventId' | 'sequence' | 'at'>;

const MAX_BACKOFF_MS = 30_000;

export class CallbackOutbox {
  private lastSequence = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly counters: { sent(): void; failed(): void },
  ) {}

  /** Time-based, so sequences keep increasing across restarts. */
  private nextSequence(): number {
    this.lastSequence = Math.max(this.lastSequence + 1, Date.now() * 1000);
    return this.lastSequence;
  }

  async enqueue(url: string, fields: CallbackFields): Promise<void> {
    const callback: Ivoa.ComponentCallback = {
      eventId: randomUUID(),
      sequence: this.nextSequence(),
      at: new Date().toISOString(),
      ...fields,
    };
    await this.db
      .insertInto('outbox')
      .values({
        event_id: callback.eventId,
        component_uuid: callback.componentUuid,
        sequence: callback.sequence,
        url,
        body: JSON.stringify(callback),
        attempts: 0,
        next_attempt_at: 0,
        // The work that wrote the callback: its delivery and the broker's handling join that trace.
        traceparent: currentTraceparent(),
      })
      .execute();
    this.kick();
  }

  /** Starts a delivery pass now (one at a time; a kick during a pass runs another after it). */
  kick(): void {
    if (this.stopped) return;
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = this.flush()
      .catch((error: unknown) => this.log.error({ err: error }, 'callback delivery pass failed'))
      .finally(() => {
        this.flushing = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async pending(): Promise<number> {
    const row = await this.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  private async flush(): Promise<void> {
    const rows = await this.db.selectFrom('outbox').selectAll().orderBy('sequence').execute();
    const blocked = new Set<string>();
    const now = Date.now();
    let nextDue = Infinity;
    for (const row of rows) {
      if (this.stopped) return;
      // A component's later callbacks wait for its earlier ones.
      if (blocked.has(row.component_uuid)) continue;
      if (row.next_attempt_at > now) {
        blocked.add(row.component_uuid);
        nextDue = Math.min(nextDue, row.next_attempt_at);
        continue;
      }
      if (await this.deliver(row.url, row.body, row.event_id, row.traceparent)) {
        this.counters.sent();
        await this.db.deleteFrom('outbox').where('event_id', '=', row.event_id).execute();
        continue;
      }
      this.counters.failed();
      blocked.add(row.component_uuid);
      const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** row.attempts);
      nextDue = Math.min(nextDue, now + delay);
      await this.db
        .updateTable('outbox')
        .set({ attempts: row.attempts + 1, next_attempt_at: now + delay })
        .where('event_id', '=', row.event_id)
        .execute();
    }
    if (nextDue < Infinity && !this.stopped) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.kick(), Math.max(0, nextDue - Date.now()));
    }
  }

  private deliver(url: string, body: string, eventId: string, traceparent: string | null): Promise<boolean> {
    return inSpan(
      'harbor',
      'POST /callbacks',
      {
        kind: SpanKind.CLIENT,
        parent: contextFrom(traceparent),
        attributes: { 'url.full': url, 'callback.event_id': eventId },
      },
      async (span) => {
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { ...signedHeaders(this.secret, body, eventId), ...traceHeaders() },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          if (response.ok) return true;
          failSpan(span, `the broker answered ${response.status}`);
          this.log.warn({ url, status: response.status }, 'callback refused; will retry');
        } catch (error) {
          failSpan(span, error);
          this.log.warn({ url, err: error }, 'callback not delivered; will retry');
        }
        return false;
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.flushing;
  }
}
