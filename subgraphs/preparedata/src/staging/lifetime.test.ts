import { describe, expect, it } from 'vitest';
import { dataWindow, durationMs, lifetimeSeconds } from './lifetime.ts';

describe('data lifetime', () => {
  const step = {
    schedule: {
      available: { start: '2026-01-01T10:00:00Z/PT0S', duration: 'PT2H' },
      releasing: { duration: 'PT30S' },
    },
  };

  it('is the end of the available window plus the release time, from now', () => {
    const window = dataWindow(step);
    expect(window).toEqual({ windowEnd: Date.parse('2026-01-01T12:00:00Z'), releaseMs: 30_000 });
    expect(lifetimeSeconds(window, Date.parse('2026-01-01T10:00:00Z'))).toBe(2 * 3600 + 30);
    expect(lifetimeSeconds(window, Date.parse('2026-01-01T11:59:59.5Z'))).toBe(31);
    expect(lifetimeSeconds(window, Date.parse('2026-01-02T00:00:00Z'))).toBe(1);
  });

  it("prefers the component's own schedule and names a missing or bad field", () => {
    const component = { schedule: { available: { start: '2026-01-01T11:00:00Z', duration: 'P1DT1M' } } };
    expect(dataWindow(step, component)).toEqual({
      windowEnd: Date.parse('2026-01-02T11:01:00Z'),
      releaseMs: 0,
    });
    expect(() => dataWindow({})).toThrow(/schedule.available needs a start and a duration/);
    expect(() => durationMs('P1M', 'schedule.available.duration')).toThrow(/schedule.available.duration/);
  });
});
