/**
 * Finds free windows of site capacity, as the reference broker does (1-minute blocks, runs of free
 * blocks cut into chunks of at most min(2 × duration, 4 h), earliest first, at most N offers) but
 * with the capacity from configuration and every step that holds capacity counted.
 */

export interface Capacity {
  cores: number;
  memoryGiB: number;
  storageGiB: number;
}

export interface Booking extends Capacity {
  /** Epoch milliseconds, start inclusive, end exclusive. */
  start: number;
  end: number;
}

export interface Need extends Capacity {
  /** The most the step can use; offers give up to twice the minimum, within this. */
  maxCores: number;
  maxMemoryGiB: number;
  durationMs: number;
}

export interface Window {
  start: number;
  end: number;
  cores: number;
  memoryGiB: number;
  storageGiB: number;
}

export interface BookingRules {
  blockMs: number;
  lookAheadMs: number;
  maxOffers: number;
  /** The longest offered window, as a cap on twice the requested duration. */
  maxChunkMs: number;
}

export function findWindows(
  capacity: Capacity,
  bookings: readonly Booking[],
  need: Need,
  earliest: number,
  rules: BookingRules,
  maxOffers: number = rules.maxOffers,
): Window[] {
  const first = Math.ceil(earliest / rules.blockMs) * rules.blockMs;
  const blocks = Math.floor(rules.lookAheadMs / rules.blockMs);
  // Free capacity changes only where a booking starts or ends, so the look-ahead is walked as the
  // runs of blocks between those points: the cost follows the bookings, not the number of blocks.
  const changes = new Map<number, Capacity>();
  const change = (at: number, sign: number, booking: Booking) => {
    const delta = changes.get(at) ?? { cores: 0, memoryGiB: 0, storageGiB: 0 };
    delta.cores += sign * booking.cores;
    delta.memoryGiB += sign * booking.memoryGiB;
    delta.storageGiB += sign * booking.storageGiB;
    changes.set(at, delta);
  };
  for (const booking of bookings) {
    const from = Math.max(0, Math.floor((booking.start - first) / rules.blockMs));
    const to = Math.min(blocks, Math.ceil((booking.end - first) / rules.blockMs));
    if (to <= from) continue;
    change(from, 1, booking);
    change(to, -1, booking);
  }
  const points = [...new Set([0, ...changes.keys(), blocks])].sort((a, b) => a - b);
  const segments: Window[] = [];
  const used = { cores: 0, memoryGiB: 0, storageGiB: 0 };
  for (let k = 0; k + 1 < points.length; k++) {
    const delta = changes.get(points[k]!);
    if (delta) {
      used.cores += delta.cores;
      used.memoryGiB += delta.memoryGiB;
      used.storageGiB += delta.storageGiB;
    }
    segments.push({
      start: points[k]!,
      end: points[k + 1]!,
      cores: capacity.cores - used.cores,
      memoryGiB: capacity.memoryGiB - used.memoryGiB,
      storageGiB: capacity.storageGiB - used.storageGiB,
    });
  }
  const fits = (free: Window) =>
    free.cores >= need.cores && free.memoryGiB >= need.memoryGiB && free.storageGiB >= need.storageGiB;

  const durationBlocks = Math.max(1, Math.ceil(need.durationMs / rules.blockMs));
  const chunkBlocks = Math.max(
    durationBlocks,
    Math.floor(Math.min(2 * need.durationMs, rules.maxChunkMs) / rules.blockMs),
  );
  const windows: Window[] = [];
  let s = 0;
  while (s < segments.length && windows.length < maxOffers) {
    if (!fits(segments[s]!)) {
      s++;
      continue;
    }
    let e = s;
    while (e < segments.length && fits(segments[e]!)) e++;
    const run = segments.slice(s, e);
    const end = run[run.length - 1]!.end;
    for (
      let start = run[0]!.start;
      start + durationBlocks <= end && windows.length < maxOffers;
      start += chunkBlocks
    ) {
      const stop = Math.min(end, start + chunkBlocks);
      if (stop - start < durationBlocks) break;
      let minCores = Number.POSITIVE_INFINITY;
      let minMemory = Number.POSITIVE_INFINITY;
      for (const free of run) {
        if (free.end <= start || free.start >= stop) continue;
        minCores = Math.min(minCores, free.cores);
        minMemory = Math.min(minMemory, free.memoryGiB);
      }
      windows.push({
        start: first + start * rules.blockMs,
        end: first + stop * rules.blockMs,
        cores: Math.min(2 * need.cores, need.maxCores, minCores),
        memoryGiB: Math.min(2 * need.memoryGiB, need.maxMemoryGiB, minMemory),
        storageGiB: need.storageGiB,
      });
    }
    s = e;
  }
  return windows;
}
