import { describe, expect, it } from 'vitest';
import { medianAndBound, readyIn, waitInWords } from '../src/format.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');
/** The instant `seconds` from NOW. */
const at = (seconds: number) => new Date(NOW + seconds * 1000);

describe('waitInWords', () => {
  it('uses seconds under a minute, minutes under two hours, then hours', () => {
    expect(waitInWords(0)).toBe('0 seconds');
    expect(waitInWords(1)).toBe('1 second');
    expect(waitInWords(45)).toBe('45 seconds');
    expect(waitInWords(60)).toBe('1 minute');
    expect(waitInWords(150)).toBe('3 minutes');
    expect(waitInWords(119 * 60)).toBe('119 minutes');
    expect(waitInWords(2 * 3600)).toBe('2 hours');
    expect(waitInWords(30 * 3600)).toBe('30 hours');
  });

  it('picks the unit after rounding, so a wait just short of a boundary reads as the next unit', () => {
    expect(waitInWords(59.6)).toBe('1 minute');
    expect(waitInWords(119.6 * 60)).toBe('2 hours');
    expect(waitInWords(89)).toBe('1 minute');
    expect(waitInWords(91)).toBe('2 minutes');
  });

  it('reads a negative wait as none', () => {
    expect(waitInWords(-30)).toBe('0 seconds');
  });
});

describe('medianAndBound', () => {
  it('leaves out the bound unit when it is the median one', () => {
    expect(medianAndBound(240, 540)).toBe('about 4 minutes, 9 at most');
  });

  it('names both units when they differ', () => {
    expect(medianAndBound(40, 150)).toBe('about 40 seconds, 3 minutes at most');
    expect(medianAndBound(90 * 60, 5 * 3600)).toBe('about 90 minutes, 5 hours at most');
  });

  it('says the median alone when the bound rounds to it (the reference constants)', () => {
    expect(medianAndBound(300, 300)).toBe('about 5 minutes');
    expect(medianAndBound(300, 310)).toBe('about 5 minutes');
  });

  it('never shows a bound below the median', () => {
    expect(medianAndBound(600, 60)).toBe('about 10 minutes');
  });
});

describe('readyIn', () => {
  it('counts down to the median and the bound', () => {
    expect(readyIn(at(240), at(540), NOW)).toBe('ready in about 4 minutes, 9 at most');
    expect(readyIn(at(240), at(540), NOW + 60_000)).toBe('ready in about 3 minutes, 8 at most');
  });

  it('uses seconds under a minute', () => {
    expect(readyIn(at(12), at(50), NOW)).toBe('ready in about 12 seconds, 50 at most');
    expect(readyIn(at(1), at(1), NOW)).toBe('ready in about 1 second');
  });

  it('keeps hours for long waits', () => {
    expect(readyIn(at(3 * 3600), at(26 * 3600), NOW)).toBe('ready in about 3 hours, 26 at most');
    expect(readyIn(at(100 * 60), at(4 * 3600), NOW)).toBe('ready in about 100 minutes, 4 hours at most');
  });

  it('says it should be ready now once the median has passed, with the time left to the bound', () => {
    expect(readyIn(at(-20), at(100), NOW)).toBe('should be ready now, 2 minutes at most');
    expect(readyIn(at(0), at(30), NOW)).toBe('should be ready now, 30 seconds at most');
  });

  it('says it should be ready by now once the bound has passed', () => {
    expect(readyIn(at(-300), at(-60), NOW)).toBe('should be ready by now');
    expect(readyIn(at(-300), at(-3 * 3600), NOW)).toBe('should be ready by now');
  });

  it('treats exactly the bound as reached', () => {
    expect(readyIn(at(-60), at(0), NOW)).toBe('should be ready by now');
    // Half a second before the bound rounds to none left.
    expect(readyIn(at(-60), at(0.4), NOW)).toBe('should be ready by now');
    expect(readyIn(at(-60), at(1), NOW)).toBe('should be ready now, 1 second at most');
  });
});
