/**
 * Online estimates of preparation times: a median and a calibrated upper bound for each action,
 * and for a whole step along its critical path. docs/estimation.md explains the method.
 */
import { referenceSeconds, SPECS, type ActionSpec } from './actions.ts';
import { DailyCycle, DurationModel, type LearnOptions } from './model.ts';
import { RecentResiduals } from './residuals.ts';
import {
  ACTIONS,
  hourOfDay,
  type Action,
  type BasisLevel,
  type DataStagingParams,
  type Estimate,
  type ImageCopyParams,
  type Observation,
  type ParamsByAction,
  type SessionStartParams,
} from './types.ts';

export interface EstimatorOptions {
  /** Probability that a duration stays within its bound (default 0.9). */
  quantile?: number;
  /** Residuals kept per group (default 128): bounds memory and query time. */
  window?: number;
  /** Weight of a residual relative to the next newer one (default 0.98: half-life ≈ 34). */
  decay?: number;
  /** Fewest observations a group needs before its estimate is used (default 8). */
  minObservations?: number;
  /** Floor of the model's learning rate (default 0.05): how fast it follows drift. */
  learningRate?: number;
  /** Step of the online coverage correction (default 0.05 × (1 − quantile)); 0 turns it off. */
  calibrationRate?: number;
  /** Estimate when there are no data (default: the reference broker's constants). */
  defaults?: <A extends Action>(action: A, params: ParamsByAction[A]) => number;
}

/** The preparation of one step: its data, its image (if it has one) and its session. */
export interface PreparationRequest {
  data?: readonly DataStagingParams[];
  image?: ImageCopyParams;
  session?: SessionStartParams;
  /** When preparation would start (time of day matters); unknown means an average hour. */
  at?: string | number | Date;
}

export type ComponentEstimate = Estimate & { action: Action };

export interface PreparationEstimate {
  components: ComponentEstimate[];
  /** Critical path when every component takes its median time. */
  readyMedianSeconds: number;
  /** The step is ready within this with probability at least `quantile`. */
  readyBoundSeconds: number;
  quantile: number;
}

export interface Estimator {
  readonly quantile: number;
  /** Learns from one finished action; failed actions are not learned from. */
  observe(observation: Observation): void;
  /** Median and bound for one action, optionally at the time it would start. */
  estimate<A extends Action>(action: A, params: ParamsByAction[A], at?: string | number | Date): Estimate;
  /** Time until a step is ready: data staging and image copy in parallel, then the session start. */
  estimatePreparation(request: PreparationRequest): PreparationEstimate;
}

/**
 * Observations that share an estimate. The action and coarse levels own a duration model; an
 * exact group uses its coarse parent's model and keeps only its own residuals, which carry what
 * is particular to it (an offset, a wider or narrower spread) without a model of its own that
 * would learn from a handful of observations and lag behind drift.
 */
interface Group {
  name: string;
  level: BasisLevel;
  model: DurationModel;
  ownsModel: boolean;
  residuals: RecentResiduals;
  /** How many observations the model's starting point is worth: little at the root, more copied. */
  priorWeight: number;
}

const LEVELS: readonly BasisLevel[] = ['exact', 'coarse', 'action'];
/** Durations below this are treated as this, so that logs stay finite. */
const SHORTEST_SECONDS = 0.01;
/** Prior transfer rate of a new action: 100 MB/s. */
const PRIOR_SECONDS_PER_BYTE = 1e-8;

export function createEstimator(options: EstimatorOptions = {}): Estimator {
  return new OnlineEstimator(options);
}

class OnlineEstimator implements Estimator {
  readonly quantile: number;
  readonly #window: number;
  readonly #decay: number;
  readonly #minObservations: number;
  readonly #calibrationRate: number;
  readonly #defaults: NonNullable<EstimatorOptions['defaults']>;
  readonly #learn: LearnOptions;
  readonly #groups = new Map<string, Group>();
  /** Miss rate currently asked of the bounds, per action; moved by the coverage actually seen. */
  readonly #missBudget: Record<Action, number>;
  readonly #daily: Record<Action, DailyCycle>;

  constructor(options: EstimatorOptions) {
    this.quantile = options.quantile ?? 0.9;
    this.#window = options.window ?? 128;
    this.#decay = options.decay ?? 0.98;
    this.#minObservations = options.minObservations ?? 8;
    this.#calibrationRate = options.calibrationRate ?? 0.05 * (1 - this.quantile);
    this.#defaults = options.defaults ?? referenceSeconds;
    this.#learn = { floor: options.learningRate ?? 0.05, clip: 1, priorWeight: 1 };
    const rules: [boolean, string][] = [
      [this.quantile > 0.5 && this.quantile < 1, 'quantile must be in (0.5, 1)'],
      [Number.isInteger(this.#window) && this.#window > 0, 'window must be a positive integer'],
      [this.#decay > 0 && this.#decay <= 1, 'decay must be in (0, 1]'],
      [
        Number.isInteger(this.#minObservations) && this.#minObservations > 0,
        'minObservations must be a positive integer',
      ],
      [this.#learn.floor > 0 && this.#learn.floor <= 1, 'learningRate must be in (0, 1]'],
      [this.#calibrationRate >= 0 && this.#calibrationRate < 1, 'calibrationRate must be in [0, 1)'],
    ];
    for (const [ok, rule] of rules) if (!ok) throw new RangeError(rule);
    const budget = 1 - this.quantile;
    this.#missBudget = { 'data-staging': budget, 'image-copy': budget, 'session-start': budget };
    this.#daily = Object.fromEntries(ACTIONS.map((a) => [a, new DailyCycle()])) as Record<Action, DailyCycle>;
  }

  observe(observation: Observation): void {
    if (observation.outcome !== 'ok') return;
    const { action, params } = observation;
    const spec = SPECS[action] as ActionSpec<typeof params>;
    const hour = hourOfDay(observation.startedAt);
    this.#calibrate(action, params, hour, observation.durationSeconds);
    const bytes = spec.bytes(params);
    const z = spec.covariates(params);
    const names = spec.groups(params);
    const actual = Math.log(Math.max(observation.durationSeconds, SHORTEST_SECONDS));
    const daily = this.#daily[action];
    // Coarsest first, so that a new finer group can start from its parent.
    const groups: Group[] = [];
    for (let level = LEVELS.length - 1; level >= 0; level--) {
      groups.push(this.#group(names[level]!, LEVELS[level]!, groups.at(-1), action, params, z.length));
    }
    // Every residual before any learning, so that each is out of sample.
    const residuals = groups.map((g) => actual - g.model.predict(bytes, z) - daily.predict(hour));
    groups.forEach((group, i) => {
      group.residuals.add(residuals[i]!);
      if (group.ownsModel)
        group.model.learn(bytes, z, residuals[i]!, { ...this.#learn, priorWeight: group.priorWeight });
    });
    // The site-level residual: the action level mixes sites, whose shares vary by hour.
    daily.learn(hour, residuals[1]!, this.#learn);
  }

  estimate<A extends Action>(action: A, params: ParamsByAction[A], at?: string | number | Date): Estimate {
    return this.#estimate(action, params, at === undefined ? undefined : hourOfDay(at), 1);
  }

  estimatePreparation(request: PreparationRequest): PreparationEstimate {
    const hour = request.at === undefined ? undefined : hourOfDay(request.at);
    const parallel: [Action, ParamsByAction[Action]][] = (request.data ?? []).map((p) => ['data-staging', p]);
    if (request.image) parallel.push(['image-copy', request.image]);
    const path = request.session ? parallel.length + 1 : parallel.length;
    // Union bound: if each of the m components on the path stays within its bound with
    // probability 1 − α/m, the max and the sum stay within the combined bound with probability
    // at least 1 − α, whatever the dependence between them.
    const component = (action: Action, params: ParamsByAction[Action]): ComponentEstimate => ({
      action,
      ...this.#estimate(action, params, hour, 1 / path),
    });
    const branches = parallel.map(([action, params]) => component(action, params));
    const session = request.session ? component('session-start', request.session) : undefined;
    const components = session ? [...branches, session] : branches;
    return {
      components,
      readyMedianSeconds:
        Math.max(0, ...branches.map((c) => c.medianSeconds)) + (session ? session.medianSeconds : 0),
      readyBoundSeconds:
        Math.max(0, ...branches.map((c) => c.boundSeconds)) + (session ? session.boundSeconds : 0),
      quantile: this.quantile,
    };
  }

  /**
   * The finest group with enough recent evidence for a bound that misses `share` of the nominal
   * miss rate; the bound's level is the calibrated stand-in for that nominal level.
   */
  #estimate<A extends Action>(
    action: A,
    params: ParamsByAction[A],
    hour: number | undefined,
    share: number,
  ): Estimate {
    const spec = SPECS[action] as ActionSpec<ParamsByAction[A]>;
    const names = spec.groups(params);
    const quantile = 1 - (1 - this.quantile) * share;
    const level = 1 - this.#missBudget[action] * share;
    for (const name of names) {
      const group = this.#groups.get(name);
      if (!group || group.residuals.size < this.#minObservations) continue;
      const upper = group.residuals.bound(level);
      const centre =
        group.model.predict(spec.bytes(params), spec.covariates(params)) + this.#daily[action].predict(hour);
      // The model follows the level of the log duration (a clipped mean, quick to follow drift);
      // the group's own recent residuals add what it misses: the gap between that mean and the
      // median when durations are skewed, and whatever sets an exact group apart from its site.
      const median = group.residuals.median();
      return {
        medianSeconds: Math.exp(centre + median),
        boundSeconds: Math.exp(centre + Math.max(upper, median)),
        quantile,
        basis: { group: group.name, n: group.residuals.size, level: group.level },
      };
    }
    const seconds = this.#defaults(action, params);
    return {
      medianSeconds: seconds,
      boundSeconds: seconds,
      quantile,
      basis: { group: `${names[2]} (reference constant)`, n: 0, level: 'default' },
    };
  }

  /** Online coverage correction (adaptive conformal inference, Gibbs & Candès 2021). */
  #calibrate<A extends Action>(action: A, params: ParamsByAction[A], hour: number, seconds: number): void {
    if (this.#calibrationRate === 0) return;
    const before = this.#estimate(action, params, hour, 1);
    if (before.basis.level === 'default') return;
    const missed = seconds > before.boundSeconds ? 1 : 0;
    // Asks for wider bounds after a miss and narrower ones after a hit, balancing at the nominal
    // miss rate; the clamp only keeps a long run of misses or hits from asking the impossible.
    const next = this.#missBudget[action] + this.#calibrationRate * (1 - this.quantile - missed);
    this.#missBudget[action] = Math.min(0.5, Math.max(0.001, next));
  }

  #group(
    name: string,
    level: BasisLevel,
    parent: Group | undefined,
    action: Action,
    params: ParamsByAction[Action],
    covariates: number,
  ): Group {
    let group = this.#groups.get(name);
    if (!group) {
      // A site, registry or session type starts from what the action has learned, then goes its
      // own way.
      const model = !parent
        ? DurationModel.prior(this.#defaults(action, params), PRIOR_SECONDS_PER_BYTE, covariates)
        : level === 'exact'
          ? parent.model
          : parent.model.copy();
      group = {
        name,
        level,
        model,
        ownsModel: level !== 'exact',
        residuals: new RecentResiduals(this.#window, this.#decay),
        priorWeight: parent ? 2 : 1,
      };
      this.#groups.set(name, group);
    }
    return group;
  }
}
