/**
 * The vocabulary of preparation-time estimation: what the broker records about each preparation
 * action (ARCHITECTURE.md, "Estimation history") and what an estimate tells its caller.
 */

export const ACTIONS = ['data-staging', 'image-copy', 'session-start'] as const;
export type Action = (typeof ACTIONS)[number];

export interface DataStagingParams {
  bytes: number;
  /** RSE name or host the data come from. */
  sourceSite: string;
  targetStorage: string;
  /** Staging jobs already running at the site when this one started. */
  inFlight: number;
}

export interface ImageCopyParams {
  bytes: number;
  /** Host of the image's source location. */
  registry: string;
  /** True when the image is already in the site's Harbor. */
  local: boolean;
}

export interface SessionStartParams {
  /** Session type: notebook, headless, … */
  type: string;
  cores: number;
  memoryGiB: number;
  /** Sessions already starting at the site when this one started. */
  inFlight: number;
}

export interface ParamsByAction {
  'data-staging': DataStagingParams;
  'image-copy': ImageCopyParams;
  'session-start': SessionStartParams;
}

/** One finished preparation action. Traces may carry more params than these; they are kept. */
export type Observation = {
  [A in Action]: {
    action: A;
    params: ParamsByAction[A];
    /** ISO-8601 instant the action started. */
    startedAt: string;
    durationSeconds: number;
    outcome: 'ok' | 'failed';
  };
}[Action];

/** Where the broker's persistence keeps observations; the estimator reads them back at start-up. */
export interface ObservationSink {
  record(observation: Observation): void | Promise<void>;
}

/** Keeps observations in memory, in the order recorded: for tests and single-process use. */
export class MemorySink implements ObservationSink {
  readonly #observations: Observation[] = [];

  record(observation: Observation): void {
    this.#observations.push(observation);
  }

  get observations(): readonly Observation[] {
    return this.#observations;
  }
}

/**
 * Which data an estimate rests on: `exact` is the finest group (e.g. site, size decade and
 * contention), `coarse` the site, registry or session type alone, `action` every observation of
 * the action, `default` the reference broker's constants (no data at all).
 */
export type BasisLevel = 'exact' | 'coarse' | 'action' | 'default';

export interface Estimate {
  /** Typical duration. */
  medianSeconds: number;
  /** The duration will not exceed this with probability `quantile` (calibrated online). */
  boundSeconds: number;
  quantile: number;
  basis: {
    group: string;
    /** Observations in the group's recent window (0 for defaults). */
    n: number;
    level: BasisLevel;
  };
}

/**
 * Time of day in hours (UTC, fractional) of an instant: preparation is slower when SRCNet is
 * busy, so the estimator uses it as a covariate.
 */
export function hourOfDay(at: string | number | Date): number {
  const d = new Date(at);
  return d.getUTCHours() + d.getUTCMinutes() / 60 + d.getUTCSeconds() / 3600;
}
