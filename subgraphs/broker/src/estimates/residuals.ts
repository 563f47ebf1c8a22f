/** Where the extrapolated tail begins, as a weighted quantile of the window. */
const TAIL_START = 0.75;

/**
 * The recent residuals of one group, weighted by recency, from which the estimator reads its
 * median correction and its bound.
 *
 * The bound is a weighted conformal quantile (Barber, Candès, Ramdas & Tibshirani 2023,
 * "Conformal prediction beyond exchangeability"): the residual of the next observation is treated
 * as one more point of weight 1 at +∞, which keeps small windows from quoting over-confident
 * bounds. Recency weights (decay^age) let the bound follow drift; the window caps memory and the
 * cost of a query.
 */
export class RecentResiduals {
  readonly #capacity: number;
  readonly #weights: Float64Array;
  /** Sum of the weights of the n newest residuals, at index n. */
  readonly #totals: Float64Array;
  /** Residuals in arrival order, as a ring. */
  readonly #ring: Float64Array;
  /** Residuals in ascending order, with the arrival number of each. */
  readonly #values: number[] = [];
  readonly #arrivals: number[] = [];
  #added = 0;

  constructor(capacity: number, decay: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    if (!(decay > 0 && decay <= 1)) throw new RangeError('decay must be in (0, 1]');
    this.#capacity = capacity;
    this.#ring = new Float64Array(capacity);
    this.#weights = new Float64Array(capacity);
    this.#totals = new Float64Array(capacity + 1);
    for (let age = 0; age < capacity; age++) {
      this.#weights[age] = decay ** age;
      this.#totals[age + 1] = this.#totals[age]! + this.#weights[age]!;
    }
  }

  /** Residuals currently held. */
  get size(): number {
    return this.#values.length;
  }

  /** Sum of the recency weights: how much evidence the window holds. */
  get weight(): number {
    return this.#totals[this.size]!;
  }

  add(residual: number): void {
    const slot = this.#added % this.#capacity;
    if (this.#added >= this.#capacity) this.#remove(this.#ring[slot]!, this.#added - this.#capacity);
    this.#ring[slot] = residual;
    const at = this.#lowerBound(residual);
    this.#values.splice(at, 0, residual);
    this.#arrivals.splice(at, 0, this.#added);
    this.#added += 1;
  }

  /** Weighted median of the residuals (0 when empty). */
  median(): number {
    if (this.size === 0) return 0;
    return this.#scan(0.5 * this.weight);
  }

  /**
   * Smallest residual r such that the next residual is ≤ r with probability `level`, counting the
   * unseen next residual as weight 1 at +∞. When the window is too light for the level, the tail
   * above the window's upper quartile is extrapolated as exponential (a Pareto tail of durations,
   * fitted by its mean excess), never below the largest residual seen. Infinity when empty.
   */
  bound(level: number): number {
    if (this.size === 0) return Infinity;
    const weight = this.weight;
    const target = level * (weight + 1);
    if (target <= weight) return this.#scan(target);
    const threshold = this.#scan(TAIL_START * weight);
    const newest = this.#added - 1;
    let above = 0;
    let excess = 0;
    for (let i = 0; i < this.size; i++) {
      const value = this.#values[i]!;
      if (value <= threshold) continue;
      const w = this.#weights[newest - this.#arrivals[i]!]!;
      above += w;
      excess += w * (value - threshold);
    }
    const scale = above > 0 ? excess / above : 0;
    const tailMass = (above + 1) / (weight + 1);
    return Math.max(this.#values[this.size - 1]!, threshold + scale * Math.log(tailMass / (1 - level)));
  }

  #scan(target: number): number {
    const newest = this.#added - 1;
    let cumulative = 0;
    for (let i = 0; i < this.#values.length; i++) {
      cumulative += this.#weights[newest - this.#arrivals[i]!]!;
      if (cumulative >= target - 1e-12) return this.#values[i]!;
    }
    return this.#values[this.#values.length - 1]!;
  }

  #remove(value: number, arrival: number): void {
    for (let i = this.#lowerBound(value); i < this.#values.length; i++) {
      if (this.#arrivals[i] === arrival) {
        this.#values.splice(i, 1);
        this.#arrivals.splice(i, 1);
        return;
      }
    }
  }

  #lowerBound(value: number): number {
    let lo = 0;
    let hi = this.#values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#values[mid]! < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
