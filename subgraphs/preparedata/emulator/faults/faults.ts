import type { OperationName } from '../../src/preparedata/mapping.ts';
import type { Random } from '@srcnet/service-kit';

/** Fires with probability `rate`; with `count`, at most that many more times. */
export interface FaultSwitch {
  rate: number;
  count?: number;
}

export interface ApiFaults {
  /** Operations the faults apply to; all API operations when absent. */
  operations?: OperationName[];
  /** Answer with this 5xx (default 503) instead of doing the work. */
  error?: FaultSwitch & { status?: number };
  /** Answer 429 with Retry-After (default 1 s). */
  rateLimit?: FaultSwitch & { retryAfterSeconds?: number };
  /**
   * Never answer. With `afterProcessing` the work is done first and only the response is lost:
   * the case that makes a retried submit dangerous without an idempotency key.
   */
  hang?: FaultSwitch & { afterProcessing?: boolean };
  /** Answer, but only after `delayMs`. */
  slow?: FaultSwitch & { delayMs: number };
}

export interface CallbackFaults {
  /** The notification is never sent. */
  drop?: FaultSwitch;
  /** The notification is delivered twice (same event id). */
  duplicate?: FaultSwitch;
  /** The notification swaps places with the job's next one. */
  reorder?: FaultSwitch;
  /** Every notification waits this long (plus up to `jitterMs`) before its first attempt. */
  delay?: { delayMs: number; jitterMs?: number };
}

export interface Faults {
  api?: ApiFaults;
  callbacks?: CallbackFaults;
}

export type ApiFaultKind = 'error' | 'rateLimit' | 'hang' | 'hangAfter' | 'slow';

/** What to do to one request; `slow` may combine with the others. */
export interface ApiFaultDecision {
  reject?: { status: number; retryAfterSeconds?: number };
  hang?: 'before' | 'after';
  delayMs?: number;
}

function checkSwitch(value: FaultSwitch | undefined, where: string): void {
  if (!value) return;
  if (!(value.rate >= 0 && value.rate <= 1))
    throw new RangeError(`${where}.rate must be from 0 to 1 (got ${value.rate})`);
  if (value.count !== undefined && !(Number.isSafeInteger(value.count) && value.count >= 0))
    throw new RangeError(`${where}.count must be a non-negative integer (got ${value.count})`);
}

/** Validates a fault configuration; errors name the field and the rule. */
export function checkFaults(faults: Faults): Faults {
  const api = faults.api ?? {};
  checkSwitch(api.error, 'api.error');
  if (api.error?.status !== undefined && !(api.error.status >= 500 && api.error.status <= 599))
    throw new RangeError(`api.error.status must be a 5xx status (got ${api.error.status})`);
  checkSwitch(api.rateLimit, 'api.rateLimit');
  checkSwitch(api.hang, 'api.hang');
  checkSwitch(api.slow, 'api.slow');
  if (api.slow && !(api.slow.delayMs >= 0))
    throw new RangeError('api.slow.delayMs must be a non-negative number');
  const callbacks = faults.callbacks ?? {};
  checkSwitch(callbacks.drop, 'callbacks.drop');
  checkSwitch(callbacks.duplicate, 'callbacks.duplicate');
  checkSwitch(callbacks.reorder, 'callbacks.reorder');
  if (callbacks.delay && !(callbacks.delay.delayMs >= 0))
    throw new RangeError('callbacks.delay.delayMs must be a non-negative number');
  return structuredClone(faults);
}

/** The current fault switches and the counts of what fired. */
export class FaultInjector {
  private faults: Faults;
  readonly fired: Record<ApiFaultKind | 'drop' | 'duplicate' | 'reorder', number> = {
    error: 0,
    rateLimit: 0,
    hang: 0,
    hangAfter: 0,
    slow: 0,
    drop: 0,
    duplicate: 0,
    reorder: 0,
  };

  constructor(
    private readonly random: Random,
    faults: Faults = {},
  ) {
    this.faults = checkFaults(faults);
  }

  /** Replaces every switch (an empty object turns all faults off). */
  set(faults: Faults): void {
    this.faults = checkFaults(faults);
  }

  get(): Faults {
    return structuredClone(this.faults);
  }

  private fire(value: FaultSwitch | undefined): boolean {
    if (!value || value.rate <= 0 || value.count === 0) return false;
    if (this.random() >= value.rate) return false;
    if (value.count !== undefined) value.count--;
    return true;
  }

  forRequest(operation: OperationName): ApiFaultDecision {
    const api = this.faults.api;
    if (!api || (api.operations && !api.operations.includes(operation))) return {};
    const decision: ApiFaultDecision = {};
    if (this.fire(api.hang)) {
      decision.hang = api.hang?.afterProcessing ? 'after' : 'before';
      this.fired[decision.hang === 'after' ? 'hangAfter' : 'hang']++;
    } else if (this.fire(api.error)) {
      decision.reject = { status: api.error?.status ?? 503 };
      this.fired.error++;
    } else if (this.fire(api.rateLimit)) {
      decision.reject = { status: 429, retryAfterSeconds: api.rateLimit?.retryAfterSeconds ?? 1 };
      this.fired.rateLimit++;
    }
    if (this.fire(api.slow)) {
      decision.delayMs = api.slow?.delayMs ?? 0;
      this.fired.slow++;
    }
    return decision;
  }

  private fireCounted(value: FaultSwitch | undefined, kind: 'drop' | 'duplicate' | 'reorder'): boolean {
    const fired = this.fire(value);
    if (fired) this.fired[kind]++;
    return fired;
  }

  dropCallback(): boolean {
    return this.fireCounted(this.faults.callbacks?.drop, 'drop');
  }

  duplicateCallback(): boolean {
    return this.fireCounted(this.faults.callbacks?.duplicate, 'duplicate');
  }

  reorderCallback(): boolean {
    return this.fireCounted(this.faults.callbacks?.reorder, 'reorder');
  }

  callbackDelayMs(): number {
    const delay = this.faults.callbacks?.delay;
    return delay ? delay.delayMs + Math.round(this.random() * (delay.jitterMs ?? 0)) : 0;
  }
}

const OPERATIONS: readonly OperationName[] = [
  'submit',
  'getJob',
  'listJobs',
  'extendLifetime',
  'release',
  'registerCallback',
  'unregisterCallback',
];

/**
 * Faults from PREPAREDATA_FAULT_* variables (rates 0..1, times in ms unless named in seconds):
 * OPERATIONS (comma list), ERROR_RATE, ERROR_STATUS, 429_RATE, RETRY_AFTER_SECONDS, HANG_RATE,
 * HANG_AFTER_PROCESSING (true|false), SLOW_RATE, SLOW_MS, CALLBACK_DROP_RATE,
 * CALLBACK_DUPLICATE_RATE, CALLBACK_REORDER_RATE, CALLBACK_DELAY_MS, CALLBACK_DELAY_JITTER_MS.
 */
export function faultsFromEnv(env: NodeJS.ProcessEnv): Faults {
  const read = (name: string): number | undefined => {
    const text = env[`PREPAREDATA_FAULT_${name}`];
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    if (!Number.isFinite(value))
      throw new RangeError(`PREPAREDATA_FAULT_${name} must be a number (got ${text})`);
    return value;
  };
  const api: ApiFaults = {};
  const operations = env['PREPAREDATA_FAULT_OPERATIONS'];
  if (operations) {
    const names = operations.split(',').map((name) => name.trim());
    for (const name of names)
      if (!OPERATIONS.includes(name as OperationName))
        throw new RangeError(`PREPAREDATA_FAULT_OPERATIONS: ${name} is not one of ${OPERATIONS.join(', ')}`);
    api.operations = names as OperationName[];
  }
  const errorRate = read('ERROR_RATE');
  if (errorRate !== undefined) {
    const status = read('ERROR_STATUS');
    api.error = status === undefined ? { rate: errorRate } : { rate: errorRate, status };
  }
  const limitRate = read('429_RATE');
  if (limitRate !== undefined)
    api.rateLimit = { rate: limitRate, retryAfterSeconds: read('RETRY_AFTER_SECONDS') ?? 1 };
  const hangRate = read('HANG_RATE');
  if (hangRate !== undefined)
    api.hang = { rate: hangRate, afterProcessing: env['PREPAREDATA_FAULT_HANG_AFTER_PROCESSING'] === 'true' };
  const slowRate = read('SLOW_RATE');
  if (slowRate !== undefined) api.slow = { rate: slowRate, delayMs: read('SLOW_MS') ?? 2000 };
  const callbacks: CallbackFaults = {};
  const drop = read('CALLBACK_DROP_RATE');
  if (drop !== undefined) callbacks.drop = { rate: drop };
  const duplicate = read('CALLBACK_DUPLICATE_RATE');
  if (duplicate !== undefined) callbacks.duplicate = { rate: duplicate };
  const reorder = read('CALLBACK_REORDER_RATE');
  if (reorder !== undefined) callbacks.reorder = { rate: reorder };
  const delayMs = read('CALLBACK_DELAY_MS');
  if (delayMs !== undefined) callbacks.delay = { delayMs, jitterMs: read('CALLBACK_DELAY_JITTER_MS') ?? 0 };
  return checkFaults({ api, callbacks });
}
