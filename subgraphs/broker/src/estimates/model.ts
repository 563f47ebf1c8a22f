export interface LearnOptions {
  /** Smallest learning rate: the model forgets at this rate per observation. */
  floor: number;
  /** Largest log residual a single observation acts on. */
  clip: number;
  /** How many observations the starting point is worth. */
  priorWeight: number;
}

const clip = (residual: number, limit: number) => Math.max(-limit, Math.min(limit, residual));

/**
 * The duration model of a site, registry or session type, on a log scale:
 *
 *   ln d ≈ ln(latency + bytes × secondsPerByte) + Σ β_j (z_j − z̄_j)
 *
 * A fixed latency plus a transfer time explains durations across sizes that differ by orders of
 * magnitude; the covariates z (log contention, log resources) scale it. It is learned online by a
 * normalised least-mean-squares step on the log residual, clipped so that one stalled transfer
 * moves it no more than an ordinary one (a Huber-type M-estimate), with a learning rate that
 * starts as a running average and settles at a floor, which is what lets it follow drift.
 */
export class DurationModel {
  #lnLatency: number;
  #lnSecondsPerByte: number;
  readonly #beta: Float64Array;
  /** Running means that centre the covariates, so that β does not absorb the level. */
  readonly #centre: Float64Array;
  #updates = 0;

  private constructor(lnLatency: number, lnSecondsPerByte: number, beta: Float64Array, centre: Float64Array) {
    this.#lnLatency = lnLatency;
    this.#lnSecondsPerByte = lnSecondsPerByte;
    this.#beta = beta;
    this.#centre = centre;
  }

  static prior(latencySeconds: number, secondsPerByte: number, covariates: number): DurationModel {
    return new DurationModel(
      Math.log(latencySeconds),
      Math.log(secondsPerByte),
      new Float64Array(covariates),
      new Float64Array(covariates),
    );
  }

  /** A model for another group, starting from what this one has learned. */
  copy(): DurationModel {
    return new DurationModel(
      this.#lnLatency,
      this.#lnSecondsPerByte,
      Float64Array.from(this.#beta),
      Float64Array.from(this.#centre),
    );
  }

  /** Predicted ln(seconds). */
  predict(bytes: number, z: readonly number[]): number {
    let value = Math.log(Math.exp(this.#lnLatency) + bytes * Math.exp(this.#lnSecondsPerByte));
    for (let j = 0; j < this.#beta.length; j++) value += this.#beta[j]! * (z[j]! - this.#centre[j]!);
    return value;
  }

  /** One learning step from the log residual of an observation (actual − predicted). */
  learn(bytes: number, z: readonly number[], residual: number, options: LearnOptions): void {
    const rate = Math.max(options.floor, 1 / (this.#updates + options.priorWeight));
    this.#updates += 1;
    const latency = Math.exp(this.#lnLatency);
    const transfer = bytes * Math.exp(this.#lnSecondsPerByte);
    const gLatency = latency / (latency + transfer);
    const gTransfer = 1 - gLatency;
    let norm = gLatency * gLatency + gTransfer * gTransfer;
    for (let j = 0; j < z.length; j++) norm += (z[j]! - this.#centre[j]!) ** 2;
    const step = (rate * clip(residual, options.clip)) / norm;
    this.#lnLatency += step * gLatency;
    this.#lnSecondsPerByte += step * gTransfer;
    for (let j = 0; j < z.length; j++) this.#beta[j]! += step * (z[j]! - this.#centre[j]!);
    // Move the centres and compensate the level, so that recentring never changes a prediction.
    for (let j = 0; j < z.length; j++) {
      const shift = rate * (z[j]! - this.#centre[j]!);
      this.#centre[j]! += shift;
      this.#lnLatency += this.#beta[j]! * shift;
      this.#lnSecondsPerByte += this.#beta[j]! * shift;
    }
  }
}

/**
 * The daily rhythm of an action (SRCNet is busier by day), as the first harmonic of the hour:
 * two numbers, smooth, and zero on average, so that it never shifts the groups' levels.
 */
export class DailyCycle {
  #cos = 0;
  #sin = 0;

  /** Log-scale effect at an hour (UTC); none when the hour is unknown. */
  predict(hour: number | undefined): number {
    if (hour === undefined) return 0;
    const angle = (2 * Math.PI * hour) / 24;
    return this.#cos * Math.cos(angle) + this.#sin * Math.sin(angle);
  }

  /**
   * Learns at a tenth of the models' rate: a rhythm shows only over many days, and learning it
   * faster would mistake a site's drift for a time of day.
   */
  learn(hour: number, residual: number, options: LearnOptions): void {
    const angle = (2 * Math.PI * hour) / 24;
    const step = (options.floor / 10) * clip(residual, options.clip);
    this.#cos += step * Math.cos(angle);
    this.#sin += step * Math.sin(angle);
  }
}
