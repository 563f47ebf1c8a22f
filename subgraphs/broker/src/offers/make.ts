import { KIND_BASE, KINDS, type Ivoa } from '@srcnet/execution-step-schema';
import type { Action } from '../estimates/index.ts';
import { findWindows, type Booking, type BookingRules, type Capacity } from './booking.ts';
import { newId } from './ids.ts';
import type { CheckedRequest, SiteLimits } from './checks.ts';
import { message } from './messages.ts';
import { formatDuration, parseDuration, parseIntervalStart } from './time.ts';

/**
 * Turns a checked request into offers: the site's rules, then the earliest start the preparation
 * allows, then free windows of capacity. Pure: the caller supplies the checks (checks.ts), the
 * clock, the bookings and the estimate (which may have asked a worker), and stores what comes back.
 */

export interface OfferRules extends BookingRules {
  capacity: Capacity;
  limits: SiteLimits;
  offerTtlMs: number;
  defaultDurationMs: number;
  /** Time after the available window for the release actions. */
  releaseMs: number;
}

/** How long preparation is expected to take at most, per component and for the whole step. */
export interface PreparationEstimate {
  boundSeconds: number;
  medianSeconds: number;
  /** The probability the step's bound claims; none for the reference constants. */
  quantile?: number;
  components: ComponentEstimate[];
  /** Why the step cannot be prepared at all (its image is missing, say): the answer is NO. */
  refusals?: EstimateMessage[];
  /** What the estimate had to do without (a worker that did not answer): told with the offers. */
  warnings?: EstimateMessage[];
}

export interface EstimateMessage {
  kind: string;
  template: string;
  values: Record<string, string | number>;
}

export interface ComponentEstimate {
  role: string;
  uuid?: string;
  /** The action that prepares the component; none for storage and executables launched with the session. */
  action?: Action;
  /** What the estimate assumed about the action (its trace params). */
  params?: Record<string, string | number | boolean>;
  medianSeconds: number;
  boundSeconds: number;
  /** The probability the bound claims; none for the reference constants and the Harbor worker's figure. */
  quantile?: number;
  /** What the figures rest on: the estimator's group and evidence, a constant, the Harbor worker's check. */
  basis: Ivoa.EstimateBasis;
  /** What the estimate had to do without (an image that could not be checked). */
  note?: string;
}

export interface MadeOffers {
  offerSet: Ivoa.OfferSetResponse;
  offers: {
    document: Ivoa.ScheduledExecutionSession;
    /** The estimate this offer's start rests on, with this offer's component uuids: kept with the step. */
    estimates: Ivoa.PreparationEstimates;
    start: number;
    end: number;
    cores: number;
    memoryGiB: number;
    storageGiB: number;
  }[];
  expires: number;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

export function makeOffers(input: {
  request: Ivoa.ExecutionRequest;
  /** The request after checkRequest. */
  checked: CheckedRequest;
  owner: string;
  now: number;
  bookings: readonly Booking[];
  rules: OfferRules;
  /** Made from `checked`; unused when the checks refused the request. */
  estimate: PreparationEstimate;
  maxOffers?: number;
  notes?: string[];
}): MadeOffers {
  const { request, checked, now, rules, estimate } = input;
  const messages = [...checked.messages];
  for (const note of input.notes ?? [])
    messages.push(
      message('INFO', 'urn:upgraded', 'Upgraded to schema 1.0.7: ${note}', { note }, new Date(now)),
    );
  const offerSetId = newId();
  const expires = now + rules.offerTtlMs;
  const answer = (result: 'YES' | 'NO', offers: MadeOffers['offers']): MadeOffers => ({
    offerSet: {
      kind: `${KIND_BASE}offerset/execution-offerset.yaml`,
      meta: { uuid: offerSetId, owner: input.owner, created: iso(now), messages },
      result,
      offers: offers.map((offer) => offer.document),
    },
    offers,
    expires,
  });
  const no = (kind: string, template: string, values: Record<string, string | number> = {}) => {
    messages.push(message('ERROR', kind, template, values, new Date(now)));
    return answer('NO', []);
  };

  if (checked.fatal) return no('urn:request-refused', 'No offers: the request breaks the rules above');
  for (const warning of estimate.warnings ?? [])
    messages.push(message('WARN', warning.kind, warning.template, warning.values, new Date(now)));
  if (estimate.refusals?.length) {
    for (const refusal of estimate.refusals)
      messages.push(message('ERROR', refusal.kind, refusal.template, refusal.values, new Date(now)));
    return no('urn:request-refused', 'No offers: the step cannot be prepared, as said above');
  }

  const requested = request.schedule?.requested;
  let durationMs = rules.defaultDurationMs;
  if (requested?.duration) {
    const parsed = parseDuration(requested.duration);
    if (parsed === undefined) {
      return no(
        'urn:input-syntax-fail',
        'The requested duration [${duration}] has years or months, which have no fixed length',
        {
          duration: requested.duration,
        },
      );
    }
    durationMs = parsed;
  }
  if (durationMs <= 0) return no('urn:bad-value', 'The requested duration must be longer than zero');
  if (durationMs > rules.lookAheadMs) {
    return no(
      'urn:duration-too-long',
      'The requested duration ${duration} is longer than this site books ahead (${limit})',
      {
        duration: formatDuration(durationMs),
        limit: formatDuration(rules.lookAheadMs),
      },
    );
  }

  const earliestReady = now + estimate.boundSeconds * 1000;
  let earliest = earliestReady;
  if (requested?.start) {
    const window = parseIntervalStart(requested.start);
    if (!window)
      return no(
        'urn:input-syntax-fail',
        'The requested start [${start}] is not an interval this broker reads',
        { start: requested.start },
      );
    if (window.end <= earliestReady) {
      return no(
        'urn:start-too-early',
        'The requested start window ends at ${end}, before the step can be ready at ${ready}',
        {
          end: iso(window.end),
          ready: iso(earliestReady),
        },
      );
    }
    earliest = Math.max(earliestReady, window.start);
  }

  const cores = (checked.compute.cores as { min: number; max: number }) ?? { min: 1, max: 1 };
  const memory = (checked.compute.memory as { min: number; max: number }) ?? { min: 1, max: 1 };
  const storageGiB = checked.storage.reduce((sum, s) => sum + ((s.size as { min: number }).min ?? 0), 0);
  const windows = findWindows(
    rules.capacity,
    input.bookings,
    {
      cores: cores.min,
      memoryGiB: memory.min,
      storageGiB,
      maxCores: cores.max,
      maxMemoryGiB: memory.max,
      durationMs,
    },
    earliest,
    rules,
    input.maxOffers,
  );
  if (windows.length === 0) {
    return no(
      'urn:no-capacity',
      'No window of ${duration} with ${cores} cores, ${memory} GiB of memory and ${storage} GiB of storage is free in the next ${ahead} (site capacity ${total})',
      {
        duration: formatDuration(durationMs),
        cores: cores.min,
        memory: memory.min,
        storage: storageGiB,
        ahead: formatDuration(rules.lookAheadMs),
        total: `${rules.capacity.cores} cores, ${rules.capacity.memoryGiB} GiB memory, ${rules.capacity.storageGiB} GiB storage`,
      },
    );
  }

  const prepareMs = estimate.boundSeconds * 1000;
  const offers = windows.map((window, n) => {
    const copy = <T>(value: T): T => structuredClone(value);
    const schedule: Ivoa.Schedule = {
      preparing: { start: iso(window.start - prepareMs), duration: formatDuration(prepareMs) },
      available: { start: `${iso(window.start)}/PT0S`, duration: formatDuration(window.end - window.start) },
      releasing: { start: iso(window.end), duration: formatDuration(rules.releaseMs) },
    };
    const uuids = new Map<string, string>();
    const withSchedule = <T extends Record<string, unknown>>(component: T): T => {
      const c = copy(component);
      const uuid = newId();
      uuids.set((component.meta as { uuid: string }).uuid, uuid);
      (c as Record<string, unknown>).meta = { ...(c.meta as object), uuid };
      (c as Record<string, unknown>).schedule = schedule;
      return c;
    };
    const storage = checked.storage.map(withSchedule);
    const data = checked.data.map(withSchedule);
    // Components were given uuids during the checks; each offer needs its own, with links kept.
    const renamed = new Map(checked.storage.map((s, i) => [s.meta!.uuid!, storage[i]!.meta!.uuid!]));
    for (const [i, d] of data.entries()) d.storage = renamed.get(checked.data[i]!.storage as string);
    for (const s of storage)
      s.data = data.filter((d) => d.storage === s.meta!.uuid).map((d) => d.meta!.uuid!);
    const compute = withSchedule(checked.compute);
    compute.cores = { min: window.cores, max: window.cores };
    compute.memory = { min: window.memoryGiB, max: window.memoryGiB };
    const dataRenamed = new Map(checked.data.map((d, i) => [d.meta!.uuid!, data[i]!.meta!.uuid!]));
    compute.volumes = ((compute.volumes as Record<string, unknown>[]) ?? []).map((volume) => ({
      ...volume,
      resource:
        renamed.get(volume.resource as string) ??
        dataRenamed.get(volume.resource as string) ??
        volume.resource,
    }));
    const document = {
      kind: KINDS.ScheduledExecutionSession!,
      meta: { uuid: newId(), name: `offer-${n}`, owner: input.owner, created: iso(now) },
      phase: 'OFFERED',
      expires: iso(expires),
      executable: checked.executable ? withSchedule(checked.executable) : undefined,
      compute,
      storage,
      data,
      schedule,
    } as unknown as Ivoa.ScheduledExecutionSession;
    return {
      document,
      estimates: offerEstimates(estimate, uuids, now, window.start - prepareMs, window.start),
      start: window.start,
      end: window.end,
      cores: window.cores,
      memoryGiB: window.memoryGiB,
      storageGiB: window.storageGiB,
    };
  });
  return answer('YES', offers);
}

/** The estimate as the offer keeps it: planned instants, and each action under the offer's uuids. */
function offerEstimates(
  estimate: PreparationEstimate,
  uuids: ReadonlyMap<string, string>,
  now: number,
  preparingStart: number,
  readyBy: number,
): Ivoa.PreparationEstimates {
  const actions: Ivoa.PreparationActionEstimate[] = [];
  for (const c of estimate.components) {
    const component = c.uuid && uuids.get(c.uuid);
    if (!c.action || !component) continue;
    actions.push({
      action: c.action,
      role: c.role,
      component,
      medianSeconds: c.medianSeconds,
      boundSeconds: c.boundSeconds,
      quantile: c.quantile,
      basis: c.basis,
      params: c.params,
      note: c.note,
    });
  }
  return {
    estimatedAt: new Date(now).toISOString(),
    quantile: estimate.quantile,
    medianSeconds: estimate.medianSeconds,
    boundSeconds: estimate.boundSeconds,
    readyMedianAt: new Date(preparingStart + estimate.medianSeconds * 1000).toISOString(),
    readyBoundAt: new Date(readyBy).toISOString(),
    actions,
  };
}
