/**
 * Callbacks to the broker, written to SQLite before they are sent so that a restart loses none.
 * Each component has its own lane: its callbacks go out one at a time in sequence order, retried
 * with backoff until a 2xx, while other components' lanes go on in parallel (one slow step must
 * not delay the phase changes of all the others).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
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
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly secret: string,
    private readonly log: Logger,
    private readonly counters: { sent(): void; failed(): void },
  ) {}

  /** Time-based, so that sequences keep increasing across restarts. */
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
    this.kick(callback.componentUuid);
  }

  /** Resumes every lane with callbacks left from before a restart. */
  async resume(): Promise<void> {
    const rows = await this.db.selectFrom('outbox').select('component_uuid').distinct().execute();
    for (const row of rows) this.kick(row.component_uuid);
  }

  async pending(): Promise<number> {
    const row = await this.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  private kick(component: string): void {
    if (this.stop.signal.aborted || this.lanes.has(component)) return;
    const lane = this.drain(component)
      .catch((error: unknown) => {
        if (!this.stop.signal.aborted) this.log.error({ err: error, component }, 'callback lane failed');
      })
      .finally(() => {
        this.lanes.delete(component);
      });
    this.lanes.set(component, lane);
  }

  private async drain(component: string): Promise<void> {
    for (;;) {
      if (this.stop.signal.aborted) return;
      const row = await this.db
        .selectFrom('outbox')
        .selectAll()
        .where('component_uuid', '=', component)
        .orderBy('sequence')
        .limit(1)
        .executeTakeFirst();
      if (!row) return;
      const wait = row.next_attempt_at - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: this.stop.signal });
      if (await this.deliver(row.url, row.body, row.event_id, row.traceparent)) {
        this.counters.sent();
        await this.db.deleteFrom('outbox').where('event_id', '=', row.event_id).execute();
        continue;
      }
      this.counters.failed();
      const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** row.attempts);
      await this.db
        .updateTable('outbox')
        .set({ attempts: row.attempts + 1, next_attempt_at: Date.now() + delay })
        .where('event_id', '=', row.event_id)
        .execute();
    }
  }

  private deliver(url: string, body: string, eventId: string, traceparent: string | null): Promise<boolean> {
    return inSpan(
      'skaha',
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
            signal: AbortSignal.any([AbortSignal.timeout(10_000), this.stop.signal]),
          });
          if (response.ok) return true;
          failSpan(span, `the broker answered ${response.status}`);
          this.log.warn(
            { url, status: response.status, body: await response.text() },
            'callback refused; will retry',
          );
        } catch (error) {
          failSpan(span, error);
          if (!this.stop.signal.aborted)
            this.log.warn({ url, err: error }, 'callback not delivered; will retry');
        }
        return false;
      },
    );
  }

  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([...this.lanes.values()]);
  }
}
