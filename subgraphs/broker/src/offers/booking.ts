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
  // Difference arrays: each booking costs O(1) however long it is, then one running sum.
  const delta = {
    cores: new Float64Array(blocks + 1),
    memoryGiB: new Float64Array(blocks + 1),
    storageGiB: new Float64Array(blocks + 1),
  };
  for (const booking of bookings) {
    const from = Math.max(0, Math.floor((booking.start - first) / rules.blockMs));
    const to = Math.min(blocks, Math.ceil((booking.end - first) / rules.blockMs));
    if (to <= from) continue;
    delta.cores[from]! += booking.cores;
    delta.cores[to]! -= booking.cores;
    delta.memoryGiB[from]! += booking.memoryGiB;
    delta.memoryGiB[to]! -= booking.memoryGiB;
    delta.storageGiB[from]! += booking.storageGiB;
    delta.storageGiB[to]! -= booking.storageGiB;
  }
  const free = {
    cores: new Float64Array(blocks),
    memoryGiB: new Float64Array(blocks),
    storageGiB: new Float64Array(blocks),
  };
  let cores = 0;
  let memoryGiB = 0;
  let storageGiB = 0;
  for (let i = 0; i < blocks; i++) {
    cores += delta.cores[i]!;
    memoryGiB += delta.memoryGiB[i]!;
    storageGiB += delta.storageGiB[i]!;
    free.cores[i] = capacity.cores - cores;
    free.memoryGiB[i] = capacity.memoryGiB - memoryGiB;
    free.storageGiB[i] = capacity.storageGiB - storageGiB;
  }
  const fits = (i: number) =>
    free.cores[i]! >= need.cores &&
    free.memoryGiB[i]! >= need.memoryGiB &&
    free.storageGiB[i]! >= need.storageGiB;

  const durationBlocks = Math.max(1, Math.ceil(need.durationMs / rules.blockMs));
  const chunkBlocks = Math.max(
    durationBlocks,
    Math.floor(Math.min(2 * need.durationMs, rules.maxChunkMs) / rules.blockMs),
  );
  const windows: Window[] = [];
  let i = 0;
  while (i < blocks && windows.length < maxOffers) {
    if (!fits(i)) {
      i++;
      continue;
    }
    let end = i;
    while (end < blocks && fits(end)) end++;
    for (let start = i; start + durationBlocks <= end && windows.length < maxOffers; start += chunkBlocks) {
      const stop = Math.min(end, start + chunkBlocks);
      if (stop - start < durationBlocks) break;
      let minCores = Number.POSITIVE_INFINITY;
      let minMemory = Number.POSITIVE_INFINITY;
      for (let b = start; b < stop; b++) {
        minCores = Math.min(minCores, free.cores[b]!);
        minMemory = Math.min(minMemory, free.memoryGiB[b]!);
      }
      windows.push({
        start: first + start * rules.blockMs,
        end: first + stop * rules.blockMs,
        cores: Math.min(2 * need.cores, need.maxCores, minCores),
        memoryGiB: Math.min(2 * need.memoryGiB, need.maxMemoryGiB, minMemory),
        storageGiB: need.storageGiB,
      });
    }
    i = end;
  }
  return windows;
}
