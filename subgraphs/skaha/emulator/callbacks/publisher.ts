import { randomUUID } from 'node:crypto';
import type { SessionCallbackJson } from '../../src/skaha/types.ts';
import type { SessionRecord, StatusChange } from '../sessions/engine.ts';
import type { ViewSettings } from '../sessions/views.ts';
import { sessionJson } from '../sessions/views.ts';
import type { CallbackNotifier } from './notifier.ts';
import type { CallbackRegistry } from './registry.ts';

/**
 * Turns status changes into callback events. The sequence number and the last announced status
 * live on the session record (Job annotations in a real deployment), so that both survive a
 * restart: numbering continues, and a change made while the service was down is announced when
 * it comes back.
 */
export class CallbackPublisher {
  /** Changes while down are not announced: no process is watching the cluster. */
  up = true;
  /** Changes on every restart, telling receivers to reconcile. */
  instance = randomUUID();
  events = 0;

  constructor(
    private readonly registry: CallbackRegistry,
    private readonly notifier: CallbackNotifier,
    private readonly views: ViewSettings,
  ) {}

  onChange(change: StatusChange): void {
    const { record } = change;
    if (record.appid) return;
    if (this.up) this.publish(record, change.status, change.message, change.at);
    if (change.status === 'Deleted') this.registry.removeSession(record.id);
  }

  /** After a restart: announce what changed while nobody was watching. */
  catchUp(records: SessionRecord[], now: number): void {
    for (const record of records)
      if (!record.appid && record.notified.status !== record.status)
        this.publish(record, record.status, 'status changed while the service was restarting', now);
  }

  private publish(record: SessionRecord, status: StatusChange['status'], message: string, at: number): void {
    const deleted = status === 'Deleted';
    record.notified.sequence++;
    const event: SessionCallbackJson = {
      eventId: randomUUID(),
      type: deleted ? 'session.deleted' : 'session.status',
      instance: this.instance,
      sessionId: record.id,
      name: record.name,
      userid: record.owner,
      status,
      previousStatus: record.notified.status ?? null,
      time: new Date(at).toISOString(),
      sequence: record.notified.sequence,
      message,
      ...(deleted ? {} : { session: sessionJson(record, this.views) }),
    };
    record.notified.status = status;
    this.events++;
    const body = JSON.stringify(event);
    for (const target of this.registry.targets(record.owner, record.id))
      this.notifier.send(target, record.id, event.eventId, body);
  }
}
