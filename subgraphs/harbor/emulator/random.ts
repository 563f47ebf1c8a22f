/** A number in [0, 1). */
export type Random = () => number;

/**
 * SplitMix32: a tiny seedable generator, so that a run's jitter and failures can be replayed
 * from its seed.
 */
export function seededRandom(seed: number): Random {
  let state = seed | 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}

/** `value` scaled by a factor drawn uniformly from [1 - spread, 1 + spread]. */
export function jittered(random: Random, value: number, spread: number): number {
  return value * (1 + spread * (2 * random() - 1));
}
