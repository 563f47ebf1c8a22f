/**
 * Fault switches of the backend emulators whose clients call an API and receive callbacks (Skaha,
 * prepareData): what can go wrong on each API operation and on each callback. Every switch fires
 * with a probability drawn from the emulator's seeded generator, optionally only a fixed number
 * of times, so that a failing run can be replayed.
 */
import { ConfigError, envNumber } from '../config/env.ts';
import type { Random } from '../random/random.ts';

/** Fires with probability `rate`; with `count`, at most that many more times. */
export interface FaultSwitch {
  rate: number;
  count?: number;
}

export interface ApiFaults<Operation extends string = string> {
  /** The operations the faults apply to; every API operation when absent. */
  operations?: Operation[];
  /** Answer this 5xx (default 503) without doing the work. */
  error?: FaultSwitch & { status?: number };
  /** Answer 429 with Retry-After (default 1 s) without doing the work. */
  rateLimit?: FaultSwitch & { retryAfterSeconds?: number };
  /**
   * Never answer. With `afterProcessing` the work is done and only the answer is lost: the case
   * that makes a blindly retried create start the work twice.
   */
  hang?: FaultSwitch & { afterProcessing?: boolean };
  /** Do the work, then wait `delayMs` before answering. */
  slow?: FaultSwitch & { delayMs: number };
}

export interface CallbackFaults {
  /** The notification is never sent. */
  drop?: FaultSwitch;
  /** The notification is delivered twice, with the same event id. */
  duplicate?: FaultSwitch;
  /** The notification swaps places with the next one about the same thing. */
  reorder?: FaultSwitch;
  /** The notification waits `delayMs` (plus up to `jitterMs`) before its first attempt. */
  delay?: FaultSwitch & { delayMs: number; jitterMs?: number };
}

export interface Faults<Operation extends string = string> {
  api?: ApiFaults<Operation>;
  callbacks?: CallbackFaults;
}

export type FaultKind =
  'error' | 'rateLimit' | 'hang' | 'hangAfter' | 'slow' | 'drop' | 'duplicate' | 'reorder' | 'delay';

/** What to do to one request; `delayMs` may come with any of the others. */
export interface RequestFaults {
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

function checkDelay(value: number | undefined, where: string): void {
  if (value !== undefined && !(value >= 0))
    throw new RangeError(`${where} must be a non-negative number of ms`);
}

/** Validates a fault configuration against the emulator's operations; the error names the field and the rule. */
export function checkFaults<Operation extends string>(
  faults: Faults<Operation>,
  operations: readonly Operation[],
): Faults<Operation> {
  const api = faults.api ?? {};
  for (const operation of api.operations ?? [])
    if (!operations.includes(operation))
      throw new RangeError(`api.operations: ${operation} is not one of ${operations.join(', ')}`);
  checkSwitch(api.error, 'api.error');
  if (api.error?.status !== undefined && !(api.error.status >= 500 && api.error.status <= 599))
    throw new RangeError(`api.error.status must be a 5xx status (got ${api.error.status})`);
  checkSwitch(api.rateLimit, 'api.rateLimit');
  checkSwitch(api.hang, 'api.hang');
  checkSwitch(api.slow, 'api.slow');
  if (api.slow) checkDelay(api.slow.delayMs, 'api.slow.delayMs');
  const callbacks = faults.callbacks ?? {};
  checkSwitch(callbacks.drop, 'callbacks.drop');
  checkSwitch(callbacks.duplicate, 'callbacks.duplicate');
  checkSwitch(callbacks.reorder, 'callbacks.reorder');
  checkSwitch(callbacks.delay, 'callbacks.delay');
  if (callbacks.delay) {
    checkDelay(callbacks.delay.delayMs, 'callbacks.delay.delayMs');
    checkDelay(callbacks.delay.jitterMs, 'callbacks.delay.jitterMs');
  }
  return structuredClone(faults);
}

/** The current switches, and counts of what fired. */
export class FaultInjector<Operation extends string = string> {
  private faults: Faults<Operation>;
  readonly fired: Record<FaultKind, number> = {
    error: 0,
    rateLimit: 0,
    hang: 0,
    hangAfter: 0,
    slow: 0,
    drop: 0,
    duplicate: 0,
    reorder: 0,
    delay: 0,
  };

  constructor(
    private readonly random: Random,
    private readonly operations: readonly Operation[],
    faults: Faults<Operation> = {},
  ) {
    this.faults = checkFaults(faults, operations);
  }

  /** Replaces every switch; `{}` turns all faults off. */
  set(faults: Faults<Operation>): void {
    this.faults = checkFaults(faults, this.operations);
  }

  get(): Faults<Operation> {
    return structuredClone(this.faults);
  }

  resetCounts(): void {
    for (const kind of Object.keys(this.fired) as FaultKind[]) this.fired[kind] = 0;
  }

  private fire(value: FaultSwitch | undefined, kind: FaultKind): boolean {
    if (!value || value.rate <= 0 || value.count === 0) return false;
    if (this.random() >= value.rate) return false;
    if (value.count !== undefined) value.count--;
    this.fired[kind]++;
    return true;
  }

  forRequest(operation: Operation): RequestFaults {
    const api = this.faults.api;
    if (!api || (api.operations && !api.operations.includes(operation))) return {};
    const result: RequestFaults = {};
    if (this.fire(api.hang, api.hang?.afterProcessing ? 'hangAfter' : 'hang'))
      result.hang = api.hang?.afterProcessing ? 'after' : 'before';
    else if (this.fire(api.error, 'error')) result.reject = { status: api.error?.status ?? 503 };
    else if (this.fire(api.rateLimit, 'rateLimit'))
      result.reject = { status: 429, retryAfterSeconds: api.rateLimit?.retryAfterSeconds ?? 1 };
    if (this.fire(api.slow, 'slow')) result.delayMs = api.slow?.delayMs ?? 0;
    return result;
  }

  dropCallback(): boolean {
    return this.fire(this.faults.callbacks?.drop, 'drop');
  }

  duplicateCallback(): boolean {
    return this.fire(this.faults.callbacks?.duplicate, 'duplicate');
  }

  reorderCallback(): boolean {
    return this.fire(this.faults.callbacks?.reorder, 'reorder');
  }

  /** 0 unless the delay switch fires. */
  callbackDelayMs(): number {
    const delay = this.faults.callbacks?.delay;
    if (!delay || !this.fire(delay, 'delay')) return 0;
    return delay.delayMs + Math.round(this.random() * (delay.jitterMs ?? 0));
  }
}

/**
 * Faults from `<PREFIX>_FAULT_*` variables (rates 0..1, times in ms unless named in seconds):
 * OPERATIONS (comma list), ERROR_RATE, ERROR_STATUS, 429_RATE, RETRY_AFTER_SECONDS, HANG_RATE,
 * HANG_AFTER_PROCESSING (true|false), SLOW_RATE, SLOW_MS, CALLBACK_DROP_RATE,
 * CALLBACK_DUPLICATE_RATE, CALLBACK_REORDER_RATE, CALLBACK_DELAY_RATE (1 when only
 * CALLBACK_DELAY_MS is set), CALLBACK_DELAY_MS (default 1000), CALLBACK_DELAY_JITTER_MS.
 */
export function faultsFromEnv<Operation extends string>(
  env: Record<string, string | undefined>,
  prefix: string,
  operations: readonly Operation[],
): Faults<Operation> {
  const name = (suffix: string) => `${prefix}_FAULT_${suffix}`;
  const read = (suffix: string) => {
    const value = envNumber(env, name(suffix), NaN, { min: 0 });
    return Number.isNaN(value) ? undefined : value;
  };
  const rate = (suffix: string) => {
    const value = envNumber(env, name(suffix), NaN, { min: 0, max: 1 });
    return Number.isNaN(value) ? undefined : value;
  };
  const api: ApiFaults<Operation> = {};
  const listed = env[name('OPERATIONS')];
  if (listed) {
    const names = listed.split(',').map((operation) => operation.trim());
    for (const operation of names)
      if (!operations.includes(operation as Operation))
        throw new ConfigError(`${name('OPERATIONS')}: ${operation} is not one of ${operations.join(', ')}`);
    api.operations = names as Operation[];
  }
  const errorRate = rate('ERROR_RATE');
  if (errorRate !== undefined) api.error = { rate: errorRate, status: read('ERROR_STATUS') ?? 503 };
  const limitRate = rate('429_RATE');
  if (limitRate !== undefined)
    api.rateLimit = { rate: limitRate, retryAfterSeconds: read('RETRY_AFTER_SECONDS') ?? 1 };
  const hangRate = rate('HANG_RATE');
  if (hangRate !== undefined) {
    const after = env[name('HANG_AFTER_PROCESSING')];
    if (after !== undefined && after !== 'true' && after !== 'false')
      throw new ConfigError(`${name('HANG_AFTER_PROCESSING')}=${after} must be true or false`);
    api.hang = { rate: hangRate, afterProcessing: after === 'true' };
  }
  const slowRate = rate('SLOW_RATE');
  if (slowRate !== undefined) api.slow = { rate: slowRate, delayMs: read('SLOW_MS') ?? 2000 };
  const callbacks: CallbackFaults = {};
  const drop = rate('CALLBACK_DROP_RATE');
  if (drop !== undefined) callbacks.drop = { rate: drop };
  const duplicate = rate('CALLBACK_DUPLICATE_RATE');
  if (duplicate !== undefined) callbacks.duplicate = { rate: duplicate };
  const reorder = rate('CALLBACK_REORDER_RATE');
  if (reorder !== undefined) callbacks.reorder = { rate: reorder };
  const delayRate = rate('CALLBACK_DELAY_RATE');
  const delayMs = read('CALLBACK_DELAY_MS');
  if (delayRate !== undefined || delayMs !== undefined)
    callbacks.delay = {
      rate: delayRate ?? 1,
      delayMs: delayMs ?? 1000,
      jitterMs: read('CALLBACK_DELAY_JITTER_MS') ?? 0,
    };
  return checkFaults({ api, callbacks }, operations);
}
