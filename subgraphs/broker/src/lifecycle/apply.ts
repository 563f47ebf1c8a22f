import type { Ivoa } from '@srcnet/execution-step-schema';
import {
  componentByUuid,
  componentsOf,
  type ComponentRef,
  type HistoryRecord,
  type StepRecord,
} from '../steps/model.ts';
import {
  componentCanMove,
  componentDone,
  eventFromComponents,
  transition,
  type StepEvent,
  type StepPhase,
} from './transitions.ts';

/**
 * What a step event does, beyond the phase change itself: the timers it sets or cancels and the
 * commands it sends to workers. Computed here, written by the caller in the same transaction as
 * the change (timers and commands go through the durable job queue), so a crash loses neither.
 */

export type TimerEvent = 'expire' | 'prepare' | 'release';

export interface Effects {
  history: HistoryRecord[];
  commands: { action: Ivoa.WorkerAction; component: ComponentRef }[];
  /** Timers to set (at) or cancel (null); the last word on each event wins. */
  timers: Map<TimerEvent, number | null>;
}

export const noEffects = (): Effects => ({ history: [], commands: [], timers: new Map() });

const HOLDING: ReadonlySet<Ivoa.LifecyclePhase> = new Set(['PREPARING', 'AVAILABLE', 'RUNNING']);

function setComponentPhase(record: StepRecord, uuid: string, phase: Ivoa.LifecyclePhase) {
  const component = componentByUuid(record.document, uuid);
  if (component) component.phase = phase;
}

/** The time preparation must start for the step to be ready at the start of its window. */
export function prepareStart(record: StepRecord): number {
  const start = record.document.schedule?.preparing?.start;
  return start ? Date.parse(start) : record.availableStart;
}

/**
 * Applies one event to the step (in place) and everything it leads to at once: accept goes on to
 * WAITING or PREPARING, and a change of component phases may move the step further.
 */
export function applyEvent(
  record: StepRecord,
  event: StepEvent,
  cause: string,
  now: number,
  effects: Effects,
): void {
  const from = record.phase;
  const to = transition(from, event);
  record.phase = to;
  record.modified = now;
  record.document.phase = to;
  effects.history.push({ stepId: record.id, at: now, from, to, cause });
  enter(record, to, cause, now, effects);
}

function enter(record: StepRecord, phase: StepPhase, cause: string, now: number, effects: Effects) {
  const components = componentsOf(record.document);
  switch (phase) {
    case 'OFFERED':
      if (record.expires) effects.timers.set('expire', record.expires);
      return;
    case 'REJECTED':
    case 'EXPIRED':
      effects.timers.set('expire', null);
      return;
    case 'ACCEPTED': {
      effects.timers.set('expire', null);
      const start = prepareStart(record);
      if (start > now) applyEvent(record, 'wait', cause, now, effects);
      else applyEvent(record, 'prepare', cause, now, effects);
      return;
    }
    case 'WAITING':
      for (const c of components) setComponentPhase(record, c.uuid, 'WAITING');
      effects.timers.set('prepare', prepareStart(record));
      return;
    case 'PREPARING':
      // The session starts from the image and data the others prepare, so compute waits for them.
      for (const c of components) {
        if (c.role === 'compute' && components.length > 1) {
          setComponentPhase(record, c.uuid, 'WAITING');
          continue;
        }
        setComponentPhase(record, c.uuid, 'PREPARING');
        effects.commands.push({ action: 'prepare', component: { ...c, phase: 'PREPARING' } });
      }
      effects.timers.set('release', record.availableEnd);
      follow(record, cause, now, effects);
      return;
    case 'RELEASING':
      effects.timers.set('release', null);
      for (const c of components) {
        if (HOLDING.has(c.phase)) {
          setComponentPhase(record, c.uuid, 'RELEASING');
          effects.commands.push({ action: 'release', component: c });
        }
      }
      follow(record, cause, now, effects);
      return;
    case 'FAILED':
    case 'CANCELLED':
      for (const timer of ['expire', 'prepare', 'release'] as const) effects.timers.set(timer, null);
      for (const c of components) {
        if (componentDone(c.phase)) continue;
        if (HOLDING.has(c.phase) || c.phase === 'RELEASING')
          effects.commands.push({ action: 'cancel', component: c });
        else setComponentPhase(record, c.uuid, 'CANCELLED');
      }
      return;
    default:
      return;
  }
}

/** Moves the step as far as its components' phases call for. */
function follow(record: StepRecord, cause: string, now: number, effects: Effects) {
  startComputeWhenReady(record, effects);
  for (let guard = 0; guard < 8; guard++) {
    const event = eventFromComponents(record.phase, componentsOf(record.document));
    if (!event) return;
    applyEvent(record, event, cause, now, effects);
  }
}

function startComputeWhenReady(record: StepRecord, effects: Effects) {
  if (record.phase !== 'PREPARING') return;
  const components = componentsOf(record.document);
  const compute = components.find((c) => c.role === 'compute');
  if (compute?.phase !== 'WAITING') return;
  if (!components.every((c) => c.role === 'compute' || c.phase === 'AVAILABLE')) return;
  setComponentPhase(record, compute.uuid, 'PREPARING');
  effects.commands.push({ action: 'prepare', component: { ...compute, phase: 'PREPARING' } });
}

/**
 * A worker's report on one component. Returns false when it changes nothing (a phase that does
 * not follow the current one, e.g. a late callback after a cancel).
 */
export function applyComponentPhase(
  record: StepRecord,
  callback: Pick<Ivoa.ComponentCallback, 'componentUuid' | 'phase' | 'message' | 'connectors'>,
  cause: string,
  now: number,
  effects: Effects,
): boolean {
  const component = componentByUuid(record.document, callback.componentUuid);
  if (!component) return false;
  const current = component.phase ?? 'INITIALIZING';
  if (current === callback.phase) return false;
  if (!componentCanMove(current, callback.phase)) return false;
  component.phase = callback.phase;
  record.modified = now;
  if (callback.connectors?.length) record.document.connectors = callback.connectors;
  if (callback.phase === 'FAILED' && callback.message) {
    const meta = (record.document.meta ??= {});
    meta.messages = [
      ...(meta.messages ?? []),
      {
        kind: 'urn:component-failed',
        level: 'ERROR',
        time: new Date(now).toISOString(),
        template: '${message}',
        values: { message: callback.message },
        message: callback.message,
      },
    ];
  }
  if (callback.phase === 'COMPLETED' || callback.phase === 'CANCELLED' || callback.phase === 'FAILED') {
    for (const connector of record.document.connectors ?? []) connector.status = 'FINISHED';
  }
  follow(record, cause, now, effects);
  return true;
}
