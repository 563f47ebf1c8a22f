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
  const used = Array.from({ length: blocks }, () => ({ cores: 0, memoryGiB: 0, storageGiB: 0 }));
  for (const booking of bookings) {
    const from = Math.max(0, Math.floor((booking.start - first) / rules.blockMs));
    const to = Math.min(blocks, Math.ceil((booking.end - first) / rules.blockMs));
    for (let i = from; i < to; i++) {
      used[i]!.cores += booking.cores;
      used[i]!.memoryGiB += booking.memoryGiB;
      used[i]!.storageGiB += booking.storageGiB;
    }
  }
  const free = used.map((u) => ({
    cores: capacity.cores - u.cores,
    memoryGiB: capacity.memoryGiB - u.memoryGiB,
    storageGiB: capacity.storageGiB - u.storageGiB,
  }));
  const fits = (i: number) =>
    free[i]!.cores >= need.cores &&
    free[i]!.memoryGiB >= need.memoryGiB &&
    free[i]!.storageGiB >= need.storageGiB;

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
      let cores = Number.POSITIVE_INFINITY;
      let memory = Number.POSITIVE_INFINITY;
      for (let b = start; b < stop; b++) {
        cores = Math.min(cores, free[b]!.cores);
        memory = Math.min(memory, free[b]!.memoryGiB);
      }
      windows.push({
        start: first + start * rules.blockMs,
        end: first + stop * rules.blockMs,
        cores: Math.min(2 * need.cores, need.maxCores, cores),
        memoryGiB: Math.min(2 * need.memoryGiB, need.maxMemoryGiB, memory),
        storageGiB: need.storageGiB,
      });
    }
    i = end;
  }
  return windows;
}
