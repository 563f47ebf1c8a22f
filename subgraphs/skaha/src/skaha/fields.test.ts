import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventsTable, isoTime } from '../../emulator/sessions/views.ts';
import { parseEventsTable } from './events.ts';
import { parseCores, parseMemoryGB, parseTime } from './quantities.ts';
import { isFinished, normaliseStatus } from './status.ts';

describe('normaliseStatus', () => {
  it.each([
    ['Pending', 'Pending'],
    ['running', 'Running'],
    ['Completed', 'Completed'],
    ['Succeeded', 'Completed'],
    ['Failed', 'Failed'],
    ['Failed (DeadlineExceeded)', 'Failed'],
    ['Error', 'Failed'],
    ['Terminating', 'Terminating'],
    ['Suspended', 'Unknown'],
    ['', 'Unknown'],
  ])('%j → %s', (raw, status) => {
    expect(normaliseStatus(raw)).toBe(status);
  });

  it('knows which statuses are final', () => {
    expect(['Completed', 'Failed'].every((s) => isFinished(normaliseStatus(s)))).toBe(true);
    expect(isFinished('Terminating')).toBe(false);
  });
});

describe('quantities', () => {
  it.each([
    ['8.00', 8],
    ['16G', 16],
    ['1Gi', 1024 ** 3 / 1e9],
    ['512M', 0.512],
    ['<none>', undefined],
    ['', undefined],
    [undefined, undefined],
    ['lots', undefined],
  ])('memory %j → %s GB', (text, gb) => {
    expect(parseMemoryGB(text)).toBe(gb);
  });

  it.each([
    ['2', 2],
    ['0.015', 0.015],
    ['500m', 0.5],
    ['<none>', undefined],
  ])('cores %j → %s', (text, cores) => {
    expect(parseCores(text)).toBe(cores);
  });

  it('reads times and refuses garbage', () => {
    expect(parseTime('2026-07-01T12:00:00Z')).toBe(Date.UTC(2026, 6, 1, 12));
    expect(parseTime('soon')).toBeUndefined();
  });
});

describe('events table', () => {
  it('reads back whatever the kubectl table holds, spaces in messages included', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9"/:.()-]{1,12}$/);
    const message = fc.array(word, { minLength: 1, maxLength: 8 }).map((words) => words.join(' '));
    const row = fc.record({
      type: fc.constantFrom('Normal' as const, 'Warning' as const),
      reason: fc.stringMatching(/^[A-Za-z]{1,20}$/),
      message,
      at: fc.integer({ min: 0, max: 4_000_000_000_000 }),
    });
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 6 }), (rows) => {
        const parsed = parseEventsTable(eventsTable(rows));
        expect(parsed).toEqual(
          rows.map((r) => ({
            type: r.type,
            reason: r.reason,
            message: r.message,
            firstTime: isoTime(r.at),
            lastTime: isoTime(r.at),
          })),
        );
      }),
    );
  });

  it('reads <none> as no events', () => {
    expect(parseEventsTable('<none>\n')).toEqual([]);
  });
});
