/**
 * Replays a trace the way the broker would have lived it and scores the estimator against two
 * baselines. An action's estimate is made when it starts, from the actions that had *finished*
 * by then (a long staging teaches nothing until it ends); failed actions are learned from by no
 * one and not scored, since the estimate is of a preparation that succeeds.
 */
import { referenceSeconds } from './actions.ts';
import { createEstimator, type EstimatorOptions } from './estimator.ts';
import { ACTIONS, type Action, type BasisLevel, type Observation } from './types.ts';

export interface Score {
  n: number;
  /** Share of actual durations at or under the bound. */
  coverage: number;
  /** Median absolute percentage error of the median, as a fraction. */
  mdape: number;
  /** Median of bound ÷ actual: how much an honest bound costs (not in the JSON summary). */
  boundRatio: number;
}

export interface Scores {
  overall: Score;
  byAction: Partial<Record<Action, Score>>;
}

export interface Evaluation extends Scores {
  quantile: number;
  baselines: { constants: Scores; mean: Scores };
  /** Failed observations: replayed but neither learned from nor scored. */
  failed: number;
  /** How many estimates rested on each level of data. */
  levels: Record<BasisLevel, number>;
}

interface Predictor {
  estimate(o: Observation): { median: number; bound: number };
  observe(o: Observation): void;
}

export function evaluate(trace: Iterable<Observation>, options: EstimatorOptions = {}): Evaluation {
  const estimator = createEstimator(options);
  const levels: Record<BasisLevel, number> = { exact: 0, coarse: 0, action: 0, default: 0 };
  const predictors = {
    estimator: {
      estimate: (o) => {
        const e = estimator.estimate(o.action, o.params, o.startedAt);
        levels[e.basis.level] += 1;
        return { median: e.medianSeconds, bound: e.boundSeconds };
      },
      observe: (o) => estimator.observe(o),
    } satisfies Predictor,
    constants: {
      estimate: (o) => {
        const s = referenceSeconds(o.action, o.params);
        return { median: s, bound: s };
      },
      observe: () => {},
    } satisfies Predictor,
    mean: runningMean(estimator.quantile),
  };
  const tallies = { estimator: new Tally(), constants: new Tally(), mean: new Tally() };
  const names = Object.keys(predictors) as (keyof typeof predictors)[];

  const observations = [...trace].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const finishing = observations.map((o, index) => ({
    index,
    end: Date.parse(o.startedAt) + o.durationSeconds * 1000,
  }));
  finishing.sort((a, b) => a.end - b.end);
  let finished = 0;
  let failed = 0;
  for (const o of observations) {
    const start = Date.parse(o.startedAt);
    for (; finished < finishing.length && finishing[finished]!.end <= start; finished++) {
      const done = observations[finishing[finished]!.index]!;
      for (const name of names) predictors[name].observe(done);
    }
    if (o.outcome !== 'ok') {
      failed += 1;
      continue;
    }
    for (const name of names) tallies[name].add(o.action, predictors[name].estimate(o), o.durationSeconds);
  }
  return {
    quantile: estimator.quantile,
    ...tallies.estimator.scores(),
    baselines: { constants: tallies.constants.scores(), mean: tallies.mean.scores() },
    failed,
    levels,
  };
}

/**
 * The naive estimator: the mean of the action's earlier durations as the median, and mean + z·sd
 * (a normal quantile) as the bound; the reference constant until there is a first duration.
 */
function runningMean(quantile: number): Predictor {
  const z = normalQuantile(quantile);
  const stats = new Map<Action, { n: number; mean: number; m2: number }>();
  return {
    estimate: (o) => {
      const s = stats.get(o.action);
      if (!s) {
        const seconds = referenceSeconds(o.action, o.params);
        return { median: seconds, bound: seconds };
      }
      const sd = s.n > 1 ? Math.sqrt(s.m2 / (s.n - 1)) : 0;
      return { median: s.mean, bound: s.mean + z * sd };
    },
    observe: (o) => {
      if (o.outcome !== 'ok') return;
      const s = stats.get(o.action) ?? { n: 0, mean: 0, m2: 0 };
      s.n += 1;
      const delta = o.durationSeconds - s.mean;
      s.mean += delta / s.n;
      s.m2 += delta * (o.durationSeconds - s.mean);
      stats.set(o.action, s);
    },
  };
}

/** Standard normal quantile for p in (0.5, 1), within 5e-4 (Abramowitz & Stegun 26.2.23). */
function normalQuantile(p: number): number {
  const t = Math.sqrt(-2 * Math.log(1 - p));
  return (
    t -
    (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t ** 3)
  );
}

/** Collects per-action outcomes of one predictor. */
class Tally {
  readonly #byAction = new Map<Action, { covered: number; errors: number[]; ratios: number[] }>();

  add(action: Action, estimate: { median: number; bound: number }, actual: number): void {
    let t = this.#byAction.get(action);
    if (!t) this.#byAction.set(action, (t = { covered: 0, errors: [], ratios: [] }));
    // Guards a zero duration; traces round to milliseconds.
    const seconds = Math.max(actual, 0.001);
    if (actual <= estimate.bound) t.covered += 1;
    t.errors.push(Math.abs(estimate.median - actual) / seconds);
    t.ratios.push(estimate.bound / seconds);
  }

  scores(): Scores {
    const all = { covered: 0, errors: [] as number[], ratios: [] as number[] };
    const byAction: Scores['byAction'] = {};
    for (const action of ACTIONS) {
      const t = this.#byAction.get(action);
      if (!t) continue;
      byAction[action] = score(t);
      all.covered += t.covered;
      all.errors.push(...t.errors);
      all.ratios.push(...t.ratios);
    }
    return { overall: score(all), byAction };
  }
}

function score(t: { covered: number; errors: number[]; ratios: number[] }): Score {
  const n = t.errors.length;
  return { n, coverage: n ? t.covered / n : NaN, mdape: median(t.errors), boundRatio: median(t.ratios) };
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The summary `estimate:eval --json` prints: counts, coverage and MdAPE only. */
export function summary(e: Evaluation) {
  const strip = (s: Score) => ({ n: s.n, coverage: s.coverage, mdape: s.mdape });
  const scores = (s: Scores) => ({
    overall: strip(s.overall),
    byAction: Object.fromEntries(Object.entries(s.byAction).map(([a, v]) => [a, strip(v)])),
  });
  return {
    quantile: e.quantile,
    ...scores(e),
    baselines: { constants: scores(e.baselines.constants), mean: scores(e.baselines.mean) },
  };
}
