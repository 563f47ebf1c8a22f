import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  findWindows,
  type Booking,
  type BookingRules,
  type Capacity,
  type Need,
  type Window,
} from './booking.ts';

/**
 * The rule findWindows follows, block by block: a block is free for the need when what the site
 * has, less every booking that overlaps the block, covers it; runs of free blocks are cut into
 * chunks of at most chunkBlocks, and each offer gets the least free capacity of its chunk.
 */
function blockByBlock(
  capacity: Capacity,
  bookings: readonly Booking[],
  need: Need,
  earliest: number,
  rules: BookingRules,
): Window[] {
  const first = Math.ceil(earliest / rules.blockMs) * rules.blockMs;
  const blocks = Math.floor(rules.lookAheadMs / rules.blockMs);
  const free = Array.from({ length: blocks }, (_, i) => {
    const from = first + i * rules.blockMs;
    const to = from + rules.blockMs;
    const left = { ...capacity };
    for (const b of bookings) {
      const bookedFrom = first + Math.floor((b.start - first) / rules.blockMs) * rules.blockMs;
      const bookedTo = first + Math.ceil((b.end - first) / rules.blockMs) * rules.blockMs;
      if (bookedFrom >= to || bookedTo <= from) continue;
      left.cores -= b.cores;
      left.memoryGiB -= b.memoryGiB;
      left.storageGiB -= b.storageGiB;
    }
    return left;
  });
  const fits = (i: number) =>
    free[i]!.cores >= need.cores &&
    free[i]!.memoryGiB >= need.memoryGiB &&
    free[i]!.storageGiB >= need.storageGiB;
  const duration = Math.max(1, Math.ceil(need.durationMs / rules.blockMs));
  const chunk = Math.max(
    duration,
    Math.floor(Math.min(2 * need.durationMs, rules.maxChunkMs) / rules.blockMs),
  );
  const windows: Window[] = [];
  for (let i = 0; i < blocks && windows.length < rules.maxOffers;) {
    if (!fits(i)) {
      i++;
      continue;
    }
    let end = i;
    while (end < blocks && fits(end)) end++;
    for (let start = i; start + duration <= end && windows.length < rules.maxOffers; start += chunk) {
      const stop = Math.min(end, start + chunk);
      if (stop - start < duration) break;
      const span = free.slice(start, stop);
      windows.push({
        start: first + start * rules.blockMs,
        end: first + stop * rules.blockMs,
        cores: Math.min(2 * need.cores, need.maxCores, ...span.map((f) => f.cores)),
        memoryGiB: Math.min(2 * need.memoryGiB, need.maxMemoryGiB, ...span.map((f) => f.memoryGiB)),
        storageGiB: need.storageGiB,
      });
    }
    i = end;
  }
  return windows;
}

const MINUTE = 60_000;
const rules: BookingRules = {
  blockMs: MINUTE,
  lookAheadMs: 600 * MINUTE,
  maxOffers: 4,
  maxChunkMs: 240 * MINUTE,
};
const capacity: Capacity = { cores: 16, memoryGiB: 64, storageGiB: 100 };
const now = Date.UTC(2026, 10, 29, 9, 0, 20);

describe('findWindows', () => {
  it('offers what the block-by-block rule offers, for any bookings', () => {
    const booking = fc
      .record({
        startMinute: fc.integer({ min: -60, max: 660 }),
        offsetMs: fc.integer({ min: 0, max: MINUTE - 1 }),
        minutes: fc.integer({ min: 1, max: 300 }),
        cores: fc.integer({ min: 1, max: 16 }),
        memoryGiB: fc.integer({ min: 1, max: 64 }),
        storageGiB: fc.integer({ min: 0, max: 100 }),
      })
      .map(({ startMinute, offsetMs, minutes, ...held }) => {
        const start = now + startMinute * MINUTE + offsetMs;
        return { start, end: start + minutes * MINUTE - offsetMs / 2, ...held };
      });
    const need = fc.record({
      cores: fc.integer({ min: 1, max: 16 }),
      memoryGiB: fc.integer({ min: 1, max: 64 }),
      storageGiB: fc.integer({ min: 0, max: 100 }),
      maxCores: fc.integer({ min: 1, max: 32 }),
      maxMemoryGiB: fc.integer({ min: 1, max: 128 }),
      durationMs: fc.integer({ min: 1, max: 300 * MINUTE }),
    });
    fc.assert(
      fc.property(fc.array(booking, { maxLength: 40 }), need, (bookings, wanted) => {
        expect(findWindows(capacity, bookings, wanted, now, rules)).toEqual(
          blockByBlock(capacity, bookings, wanted, now, rules),
        );
      }),
      { numRuns: 500, seed: 20261129 },
    );
  });

  it('goes round a booking that leaves too little, and offers the least free capacity of each window', () => {
    const need: Need = {
      cores: 8,
      memoryGiB: 8,
      storageGiB: 10,
      maxCores: 16,
      maxMemoryGiB: 16,
      durationMs: 30 * MINUTE,
    };
    const first = Math.ceil(now / MINUTE) * MINUTE;
    const windows = findWindows(
      capacity,
      [
        { start: first + 10 * MINUTE, end: first + 70 * MINUTE, cores: 10, memoryGiB: 4, storageGiB: 0 },
        { start: first + 100 * MINUTE, end: first + 110 * MINUTE, cores: 4, memoryGiB: 60, storageGiB: 0 },
        { start: first + 120 * MINUTE, end: first + 130 * MINUTE, cores: 4, memoryGiB: 0, storageGiB: 0 },
      ],
      need,
      now,
      rules,
    );
    expect(windows.slice(0, 2)).toEqual([
      { start: first + 70 * MINUTE, end: first + 100 * MINUTE, cores: 16, memoryGiB: 16, storageGiB: 10 },
      { start: first + 110 * MINUTE, end: first + 170 * MINUTE, cores: 12, memoryGiB: 16, storageGiB: 10 },
    ]);
  });

  it('offers the first window at once with 50 ms blocks and nothing booked', () => {
    const fine: BookingRules = { ...rules, blockMs: 50 };
    const need: Need = {
      cores: 1,
      memoryGiB: 1,
      storageGiB: 1,
      maxCores: 1,
      maxMemoryGiB: 1,
      durationMs: MINUTE,
    };
    const windows = findWindows(capacity, [], need, now, fine, 1);
    expect(windows).toEqual([
      {
        start: Math.ceil(now / 50) * 50,
        end: Math.ceil(now / 50) * 50 + 2 * MINUTE,
        cores: 1,
        memoryGiB: 1,
        storageGiB: 1,
      },
    ]);
  });
});
