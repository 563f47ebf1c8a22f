/**
 * What the estimator needs to know about each kind of preparation action: its size, its
 * covariates, the names of its groups from finest to coarsest, and the reference broker's
 * constant for it.
 */
import type {
  Action,
  DataStagingParams,
  ImageCopyParams,
  ParamsByAction,
  SessionStartParams,
} from './types.ts';

export interface ActionSpec<P> {
  /** Bytes to move, or 0 for actions whose duration does not scale with a size. */
  bytes(params: P): number;
  /**
   * Log-scale covariates whose effect each group learns (contention, requested resources); the
   * same length for every params of the action.
   */
  covariates(params: P): number[];
  /** Group names: exact, coarse, action. */
  groups(params: P): [exact: string, coarse: string, action: string];
}

const ln1p = Math.log1p;

/** Decades from 1 MB to 10 TB, everything smaller together: sizes differ by orders of magnitude. */
function sizeBucket(bytes: number): string {
  const units = ['MB', 'GB', 'TB'];
  const label = (decade: number) => `${10 ** (decade % 3)}${units[Math.floor(decade / 3)]}`;
  const decade = Math.min(Math.floor(Math.log10(Math.max(bytes, 1))) - 6, 7);
  return decade < 0 ? '<1MB' : decade === 7 ? '10TB+' : `${label(decade)}..${label(decade + 1)}`;
}

/** Roughly doubling ranges: contention and resources act multiplicatively. */
function rangeBucket(value: number, edges: readonly number[], unit = ''): string {
  for (let i = 0; i < edges.length - 1; i++) {
    const lo = edges[i]!;
    const hi = edges[i + 1]!;
    if (value >= hi) continue;
    if (hi - lo === 1) return `${lo}${unit}`;
    return i === 0 ? `<${hi}${unit}` : `${lo}-${hi - 1}${unit}`;
  }
  return `${edges[edges.length - 1]}+${unit}`;
}
const IN_FLIGHT = [0, 1, 3, 7, 15];
const CORES = [1, 2, 4, 8, 16];
const MEMORY = [0, 4, 16, 64];

const dataStaging: ActionSpec<DataStagingParams> = {
  bytes: (p) => p.bytes,
  covariates: (p) => [ln1p(p.inFlight)],
  groups: (p) => {
    const coarse = `data-staging site=${p.sourceSite}`;
    return [
      `${coarse} size=${sizeBucket(p.bytes)} inFlight=${rangeBucket(p.inFlight, IN_FLIGHT)}`,
      coarse,
      'data-staging',
    ];
  },
};

/*
 * A copy of an image already in the site's Harbor and a pull from a remote registry are
 * different operations (seconds against minutes), so `local` splits even the action level.
 */
const imageCopy: ActionSpec<ImageCopyParams> = {
  bytes: (p) => p.bytes,
  covariates: () => [],
  groups: (p) => {
    const coarse = `image-copy registry=${p.registry} local=${p.local}`;
    return [`${coarse} size=${sizeBucket(p.bytes)}`, coarse, `image-copy local=${p.local}`];
  },
};

const sessionStart: ActionSpec<SessionStartParams> = {
  bytes: () => 0,
  covariates: (p) => [ln1p(p.inFlight), Math.log(p.cores), Math.log(p.memoryGiB)],
  groups: (p) => {
    const coarse = `session-start type=${p.type}`;
    const cores = rangeBucket(p.cores, CORES);
    const memory = rangeBucket(p.memoryGiB, MEMORY, 'GiB');
    const inFlight = rangeBucket(p.inFlight, IN_FLIGHT);
    return [`${coarse} cores=${cores} memory=${memory} inFlight=${inFlight}`, coarse, 'session-start'];
  },
};

export const SPECS: { [A in Action]: ActionSpec<ParamsByAction[A]> } = {
  'data-staging': dataStaging,
  'image-copy': imageCopy,
  'session-start': sessionStart,
};

/**
 * The reference broker's hard-coded preparation times (calycopis.md §3.4): 30 s a data resource,
 * 1 s for an image already cached and 60 s for a pull, 5 s to start a notebook and 1 s for any
 * other compute.
 */
export function referenceSeconds<A extends Action>(action: A, params: ParamsByAction[A]): number {
  switch (action) {
    case 'data-staging':
      return 30;
    case 'image-copy':
      return (params as ImageCopyParams).local ? 1 : 60;
    default:
      return (params as SessionStartParams).type === 'notebook' ? 5 : 1;
  }
}
