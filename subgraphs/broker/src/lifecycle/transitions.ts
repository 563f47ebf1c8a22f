import type { Ivoa } from '@srcnet/execution-step-schema';

/**
 * The step lifecycle, as one table. Every phase change of a step is one of these transitions;
 * nothing else in the broker decides which phase may follow which.
 *
 * OFFERED ──accept──► ACCEPTED ──wait──► WAITING ──prepare──► PREPARING ──ready──► AVAILABLE ──run──► RUNNING
 *    │                    └──────────────prepare───────────────┘                      │                │
 *    ├─reject / sibling-accepted─► REJECTED                                             └─release────────┴─► RELEASING ──complete──► COMPLETED
 *    └─expire─► EXPIRED                     fail (any active phase) ─► FAILED      cancel (any phase before the end) ─► CANCELLED
 */

export type StepPhase = Ivoa.SessionPhase;
export type ComponentPhase = Ivoa.LifecyclePhase;

export type StepEvent =
  | 'offer'
  | 'accept'
  | 'reject'
  | 'sibling-accepted'
  | 'expire'
  | 'wait'
  | 'prepare'
  | 'ready'
  | 'run'
  | 'release'
  | 'complete'
  | 'fail'
  | 'cancel';

const ACTIVE: StepPhase[] = ['ACCEPTED', 'WAITING', 'PREPARING', 'AVAILABLE', 'RUNNING', 'RELEASING'];

export const STEP_TRANSITIONS: Readonly<Record<StepEvent, { from: readonly StepPhase[]; to: StepPhase }>> = {
  offer: { from: ['INITIAL'], to: 'OFFERED' },
  accept: { from: ['OFFERED'], to: 'ACCEPTED' },
  reject: { from: ['OFFERED'], to: 'REJECTED' },
  'sibling-accepted': { from: ['OFFERED'], to: 'REJECTED' },
  expire: { from: ['OFFERED'], to: 'EXPIRED' },
  wait: { from: ['ACCEPTED'], to: 'WAITING' },
  prepare: { from: ['ACCEPTED', 'WAITING'], to: 'PREPARING' },
  ready: { from: ['PREPARING'], to: 'AVAILABLE' },
  run: { from: ['AVAILABLE'], to: 'RUNNING' },
  release: { from: ['AVAILABLE', 'RUNNING'], to: 'RELEASING' },
  complete: { from: ['RELEASING'], to: 'COMPLETED' },
  fail: { from: ACTIVE, to: 'FAILED' },
  cancel: {
    from: ['INITIAL', 'OFFERED', 'ACCEPTED', 'WAITING', 'PREPARING', 'AVAILABLE', 'RUNNING'],
    to: 'CANCELLED',
  },
};

export const TERMINAL_PHASES: ReadonlySet<StepPhase> = new Set([
  'REJECTED',
  'EXPIRED',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
]);

/** Phases in which a step holds (or is promised) site capacity. */
export const CAPACITY_PHASES: readonly StepPhase[] = ['OFFERED', ...ACTIVE];

/** What a client may ask for with an enum-value update of `phase`, and the event each means. */
export const CLIENT_UPDATES: Readonly<Record<string, StepEvent>> = {
  ACCEPTED: 'accept',
  REJECTED: 'reject',
  CANCELLED: 'cancel',
};

export class TransitionError extends Error {
  constructor(
    readonly phase: StepPhase,
    readonly event: StepEvent,
    readonly allowed: readonly StepPhase[],
  ) {
    super(`cannot ${event} a step in phase ${phase}; ${event} is allowed from ${allowed.join(', ')}`);
    this.name = 'TransitionError';
  }
}

export function canTransition(phase: StepPhase, event: StepEvent): boolean {
  return STEP_TRANSITIONS[event].from.includes(phase);
}

/** The phase after `event`, or a TransitionError naming the current phase and the allowed ones. */
export function transition(phase: StepPhase, event: StepEvent): StepPhase {
  const rule = STEP_TRANSITIONS[event];
  if (!rule.from.includes(phase)) throw new TransitionError(phase, event, rule.from);
  return rule.to;
}

/** The phase values a client may set now (the `values` of the step's enum-value option). */
export function clientOptions(phase: StepPhase): string[] {
  return Object.entries(CLIENT_UPDATES)
    .filter(([, event]) => canTransition(phase, event))
    .map(([value]) => value);
}

/**
 * Component lifecycle: what a worker may report next for one component. Reports that do not
 * follow (a stale or repeated callback) are ignored rather than applied out of order.
 */
export const COMPONENT_TRANSITIONS: Readonly<Record<ComponentPhase, readonly ComponentPhase[]>> = {
  INITIALIZING: ['WAITING', 'PREPARING', 'AVAILABLE', 'FAILED', 'CANCELLED'],
  WAITING: ['PREPARING', 'AVAILABLE', 'FAILED', 'CANCELLED'],
  PREPARING: ['AVAILABLE', 'RUNNING', 'RELEASING', 'COMPLETED', 'FAILED', 'CANCELLED'],
  AVAILABLE: ['RUNNING', 'RELEASING', 'COMPLETED', 'FAILED', 'CANCELLED'],
  RUNNING: ['RELEASING', 'COMPLETED', 'FAILED', 'CANCELLED'],
  RELEASING: ['COMPLETED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
};

export function componentCanMove(from: ComponentPhase, to: ComponentPhase): boolean {
  return COMPONENT_TRANSITIONS[from].includes(to);
}

const DONE: ReadonlySet<ComponentPhase> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
export const componentDone = (phase: ComponentPhase) => DONE.has(phase);

/**
 * The step event that the components' phases call for, if any (first match wins):
 * a failed component fails the step; all ready makes it AVAILABLE; a running executable makes it
 * RUNNING; the executable finishing (or anything finishing while AVAILABLE) releases it; all done
 * completes it.
 */
export function eventFromComponents(
  phase: StepPhase,
  components: readonly { role: string; phase: ComponentPhase }[],
): StepEvent | undefined {
  const phases = components.map((component) => component.phase);
  if (phases.includes('FAILED') && canTransition(phase, 'fail')) return 'fail';
  if (phase === 'RELEASING' && phases.every(componentDone)) return 'complete';
  // A component that already finished (its callback overtook the one saying it ran) counts as ready.
  if (
    phase === 'PREPARING' &&
    phases.every((p) => p === 'AVAILABLE' || p === 'RUNNING' || p === 'COMPLETED')
  ) {
    return 'ready';
  }
  if (
    (phase === 'AVAILABLE' || phase === 'RUNNING') &&
    phases.some((p) => p === 'COMPLETED' || p === 'RELEASING')
  )
    return 'release';
  if (phase === 'AVAILABLE' && phases.includes('RUNNING')) return 'run';
  return undefined;
}
