/**
 * A small seeded random source for synthetic traces: the same seed gives the same trace on every
 * machine, which Math.random cannot promise.
 */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** 32 random bits: a Weyl sequence scrambled by a multiply-xorshift finaliser. */
  #bits(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in (0, 1), never 0, so that logs of it are finite. */
  uniform(): number {
    return ((this.#bits() >>> 5) * 67108864 + (this.#bits() >>> 6) + 0.5) / 9007199254740992;
  }

  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  chance(p: number): boolean {
    return this.uniform() < p;
  }

  normal(): number {
    return Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** Log-normal with the given median and log-scale spread. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Pareto with minimum `scale` and tail index `alpha` (heavier as alpha falls). */
  pareto(scale: number, alpha: number): number {
    return scale * this.uniform() ** (-1 / alpha);
  }

  exponential(mean: number): number {
    return -mean * Math.log(this.uniform());
  }

  /** Log-uniform between lo and hi. */
  logUniform(lo: number, hi: number): number {
    return lo * (hi / lo) ** this.uniform();
  }

  /** An index drawn with probability proportional to its weight. */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u <= 0) return i;
    }
    return weights.length - 1;
  }
}
