/**
 * A worker's callbacks to the broker, written to SQLite before they are sent so that a restart
 * loses none. Each component has its own lane: its callbacks go out one at a time in sequence
 * order, retried with backoff until a 2xx (never given up), while other components' lanes go on
 * in parallel (one slow step must not delay the phase changes of all the others).
 *
 * A delivered callback stays, marked delivered, until a newer one of its component is delivered:
 * the last callback of each component is what the broker asks for when it reconciles
 * (`latest`, behind each worker's `POST /components/latest`).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';
import {
  contextFrom,
  currentTraceparent,
  failSpan,
  inSpan,
  SpanKind,
  traceHeaders,
} from '../tracing/index.ts';
import { backoffMs } from '../retry/backoff.ts';
import { signedHeaders } from './signature.ts';

export type CallbackFields = Omit<Ivoa.ComponentCallback, 'eventId' | 'sequence' | 'at'>;

export interface OutboxTable {
  event_id: string;
  component_uuid: string;
  sequence: number;
  url: string;
  /** The callback JSON, as signed and sent. */
  body: string;
  attempts: number;
  next_attempt_at: number;
  /** W3C traceparent of the work that wrote the callback (null outside a trace). */
  traceparent: string | null;
  /** Epoch ms of the broker's 2xx; null while it is still to be sent. */
  delivered_at: number | null;
}

/** What a worker's store must hold for its outbox (its `Tables` extends this). */
export interface OutboxTables {
  outbox: OutboxTable;
}

/** The most components one `latest` call answers for (and `POST /components/latest` accepts). */
export const MAX_LATEST_COMPONENTS = 1000;

const OUTBOX_BACKOFF = { baseDelayMs: 100, maxDelayMs: 30_000 };

/**
 * Creates or brings up to date the `outbox` table, in place: a file from before a column was added
 * keeps its rows (undelivered ones stay undelivered).
 */
export async function migrateOutbox<DB extends OutboxTables>(database: Kysely<DB>): Promise<void> {
  const db = database as unknown as Kysely<OutboxTables>;
  await sql`CREATE TABLE IF NOT EXISTS outbox (
    event_id TEXT PRIMARY KEY, component_uuid TEXT NOT NULL, sequence INTEGER NOT NULL,
    url TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL)`.execute(db);
  const columns = await sql<{ name: string }>`PRAGMA table_info(outbox)`.execute(db);
  const has = (name: string) => columns.rows.some((column) => column.name === name);
  if (!has('traceparent')) await sql`ALTER TABLE outbox ADD COLUMN traceparent TEXT`.execute(db);
  if (!has('delivered_at')) await sql`ALTER TABLE outbox ADD COLUMN delivered_at INTEGER`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS outbox_component ON outbox (component_uuid, sequence)`.execute(db);
}

export interface CallbackOutboxOptions<DB extends OutboxTables> {
  db: Kysely<DB>;
  /** The secret the broker checks callbacks with. */
  secret: string;
  log: Logger;
  /** The service its delivery spans are named after (`skaha`, `preparedata`, `harbor`). */
  service: string;
  /** Each worker's own metric names behind these. */
  counters: { sent(): void; failed(): void };
}

export class CallbackOutbox<DB extends OutboxTables = OutboxTables> {
  private readonly db: Kysely<OutboxTables>;
  private readonly options: Omit<CallbackOutboxOptions<DB>, 'db'>;
  private lastSequence = 0;
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly stop = new AbortController();

  constructor({ db, ...options }: CallbackOutboxOptions<DB>) {
    // The worker's database holds more tables; the outbox reads and writes only its own.
    this.db = db as unknown as Kysely<OutboxTables>;
    this.options = options;
  }

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
        delivered_at: null,
      })
      .execute();
    this.kick(callback.componentUuid);
  }

  /** Resumes every lane with callbacks left from before a restart. */
  async resume(): Promise<void> {
    const rows = await this.db
      .selectFrom('outbox')
      .select('component_uuid')
      .distinct()
      .where('delivered_at', 'is', null)
      .execute();
    for (const row of rows) this.kick(row.component_uuid);
  }

  /** Callbacks not yet delivered. */
  async pending(): Promise<number> {
    const row = await this.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('delivered_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * The last callback generated for each of these components, delivered or not; components with
   * none are left out. At most MAX_LATEST_COMPONENTS at a time.
   */
  async latest(components: readonly string[]): Promise<Ivoa.ComponentCallback[]> {
    if (components.length > MAX_LATEST_COMPONENTS)
      throw new RangeError(`at most ${MAX_LATEST_COMPONENTS} components at a time`);
    if (components.length === 0) return [];
    const rows = await this.db
      .selectFrom('outbox as o')
      .select('o.body')
      .where('o.component_uuid', 'in', [...new Set(components)])
      .where('o.sequence', '=', (eb) =>
        eb
          .selectFrom('outbox as newer')
          .select((inner) => inner.fn.max('newer.sequence').as('sequence'))
          .whereRef('newer.component_uuid', '=', 'o.component_uuid'),
      )
      .execute();
    return rows.map((row) => JSON.parse(row.body) as Ivoa.ComponentCallback);
  }

  private kick(component: string): void {
    if (this.stop.signal.aborted || this.lanes.has(component)) return;
    const lane = this.drain(component)
      .catch((error: unknown) => {
        if (!this.stop.signal.aborted)
          this.options.log.error({ err: error, component }, 'callback lane failed');
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
        .where('delivered_at', 'is', null)
        .orderBy('sequence')
        .limit(1)
        .executeTakeFirst();
      if (!row) return;
      const wait = row.next_attempt_at - Date.now();
      if (wait > 0) await sleep(wait, undefined, { signal: this.stop.signal });
      if (await this.deliver(row.url, row.body, row.event_id, row.traceparent)) {
        this.options.counters.sent();
        await this.markDelivered(component, row.event_id, row.sequence);
        continue;
      }
      this.options.counters.failed();
      // Jittered, so that the queues of many components do not retry a recovered broker in step.
      const delay = backoffMs(row.attempts + 1, OUTBOX_BACKOFF);
      await this.db
        .updateTable('outbox')
        .set({ attempts: row.attempts + 1, next_attempt_at: Date.now() + delay })
        .where('event_id', '=', row.event_id)
        .execute();
    }
  }

  /** Keeps the delivered callback as its component's last, dropping the delivered ones before it. */
  private async markDelivered(component: string, eventId: string, sequence: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('outbox')
        .set({ delivered_at: Date.now() })
        .where('event_id', '=', eventId)
        .execute();
      await tx
        .deleteFrom('outbox')
        .where('component_uuid', '=', component)
        .where('delivered_at', 'is not', null)
        .where('sequence', '<', sequence)
        .execute();
    });
  }

  private deliver(url: string, body: string, eventId: string, traceparent: string | null): Promise<boolean> {
    const { log, secret, service } = this.options;
    return inSpan(
      service,
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
            headers: { ...signedHeaders(secret, body, eventId), ...traceHeaders() },
            body,
            signal: AbortSignal.any([AbortSignal.timeout(10_000), this.stop.signal]),
          });
          if (response.ok) return true;
          failSpan(span, `the broker answered ${response.status}`);
          log.warn(
            { url, status: response.status, body: (await response.text()).slice(0, 500) },
            'callback refused; will retry',
          );
        } catch (error) {
          failSpan(span, error);
          if (!this.stop.signal.aborted) log.warn({ url, err: error }, 'callback not delivered; will retry');
        }
        return false;
      },
    );
  }

  /** Stops sending; undelivered callbacks stay for the next start's `resume`. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([...this.lanes.values()]);
  }
}
