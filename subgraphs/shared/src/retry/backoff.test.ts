import { describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs } from './backoff.ts';

describe('backoffMs', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles per attempt up to the cap, between half and all of the ceiling', () => {
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, policy, () => 0))).toEqual([
      50, 100, 200, 400, 500, 500,
    ]);
    expect([1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, policy, () => 1))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-11-29T10:00:00Z');

  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(' 0.5 ', now)).toBe(500);
    expect(retryAfterMs('Sun, 29 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('Sun, 29 Nov 2026 09:59:00 GMT', now)).toBe(0);
  });

  it('is undefined when absent or unreadable', () => {
    for (const header of [null, undefined, '', '  ', 'soon', '-1'])
      expect(retryAfterMs(header, now)).toBeUndefined();
  });
});
