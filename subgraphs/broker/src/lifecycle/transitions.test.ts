import { describe, expect, it } from 'vitest';
import {
  STEP_TRANSITIONS,
  TERMINAL_PHASES,
  clientOptions,
  eventFromComponents,
  transition,
  TransitionError,
} from './transitions.ts';

describe('the step transition table', () => {
  it('follows the happy path from offer to completion', () => {
    let phase = transition('INITIAL', 'offer');
    for (const event of ['accept', 'wait', 'prepare', 'ready', 'run', 'release', 'complete'] as const)
      phase = transition(phase, event);
    expect(phase).toBe('COMPLETED');
  });

  it('refuses an invalid transition, naming the current phase and the allowed ones', () => {
    expect(() => transition('COMPLETED', 'accept')).toThrow(TransitionError);
    expect(() => transition('PREPARING', 'accept')).toThrow(
      'cannot accept a step in phase PREPARING; accept is allowed from OFFERED',
    );
  });

  it('lets nothing leave a terminal phase', () => {
    for (const phase of TERMINAL_PHASES) {
      for (const rule of Object.values(STEP_TRANSITIONS)) expect(rule.from).not.toContain(phase);
    }
  });

  it('offers the client the updates the table allows now', () => {
    expect(clientOptions('OFFERED')).toEqual(['ACCEPTED', 'REJECTED', 'CANCELLED']);
    expect(clientOptions('PREPARING')).toEqual(['CANCELLED']);
    expect(clientOptions('COMPLETED')).toEqual([]);
  });
});

describe('step events from component phases', () => {
  const c = (role: string, phase: Parameters<typeof eventFromComponents>[1][number]['phase']) => ({
    role,
    phase,
  });
  it('a failed component fails the step', () => {
    expect(eventFromComponents('PREPARING', [c('compute', 'FAILED'), c('data', 'AVAILABLE')])).toBe('fail');
  });
  it('all ready makes the step AVAILABLE; a running executable makes it RUNNING', () => {
    expect(
      eventFromComponents('PREPARING', [c('compute', 'AVAILABLE'), c('data', 'PREPARING')]),
    ).toBeUndefined();
    expect(eventFromComponents('PREPARING', [c('compute', 'RUNNING'), c('data', 'AVAILABLE')])).toBe('ready');
    expect(eventFromComponents('AVAILABLE', [c('compute', 'RUNNING'), c('data', 'AVAILABLE')])).toBe('run');
  });
  it('a session that finished before its RUNNING report arrived still moves the step on', () => {
    expect(eventFromComponents('PREPARING', [c('compute', 'COMPLETED'), c('executable', 'AVAILABLE')])).toBe(
      'ready',
    );
    expect(eventFromComponents('AVAILABLE', [c('compute', 'COMPLETED'), c('executable', 'AVAILABLE')])).toBe(
      'release',
    );
  });
  it('the executable finishing releases the step; all done completes it', () => {
    expect(eventFromComponents('RUNNING', [c('compute', 'COMPLETED'), c('data', 'AVAILABLE')])).toBe(
      'release',
    );
    expect(
      eventFromComponents('RELEASING', [c('compute', 'COMPLETED'), c('data', 'RELEASING')]),
    ).toBeUndefined();
    expect(eventFromComponents('RELEASING', [c('compute', 'COMPLETED'), c('data', 'COMPLETED')])).toBe(
      'complete',
    );
  });
});
