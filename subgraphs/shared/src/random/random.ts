/** A number in [0, 1). */
export type Random = () => number;

/**
 * Mulberry32: small and seedable, so that an emulator's jitter and failure pattern can be replayed
 * from its seed.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `value` scaled by a factor drawn uniformly from [1 - spread, 1 + spread]. */
export function jittered(random: Random, value: number, spread: number): number {
  return value * (1 + spread * (2 * random() - 1));
}
