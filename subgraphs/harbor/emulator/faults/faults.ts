/**
 * Fault switches: what can go wrong between a worker and Harbor, on the API (both `/api/v2.0`
 * and `/v2`) and on webhook deliveries. Every switch fires with a probability drawn from the
 * emulator's seeded generator, optionally only a fixed number of times.
 */
import type { Random } from '@srcnet/service-kit';

/** Fires with probability `rate`; with `count`, at most that many more times. */
export interface FaultSwitch {
  rate: number;
  count?: number;
}

export interface ApiFaults {
  /**
   * The routes affected, as the request counter names them (`GET /api/v2.0/projects/{project_name}`);
   * a trailing `*` matches a prefix. Every route when absent.
   */
  routes?: string[];
  /** Answer this 5xx (default 500, Harbor's JSON; 502-504 come as an nginx HTML page). */
  error?: FaultSwitch & { status?: number };
  /** Answer 429 with `Retry-After` (default 1 s), as Harbor's upstream-connection limit does. */
  rateLimit?: FaultSwitch & { retryAfterSeconds?: number };
  /**
   * Never answer, so the client times out. With `afterProcessing` the work is done and only the
   * answer is lost: what makes a blindly retried POST start two replications.
   */
  timeout?: FaultSwitch & { afterProcessing?: boolean };
  /** Do the work, then wait `delayMs` (real milliseconds) before answering. */
  slow?: FaultSwitch & { delayMs: number };
}

export interface WebhookFaults {
  /** The delivery is never attempted. */
  drop?: FaultSwitch;
  /** The delivery is made twice, the same payload both times. */
  duplicate?: FaultSwitch;
  /** The first attempt waits `delayMs` (real milliseconds) longer. */
  delay?: FaultSwitch & { delayMs: number };
  /** The delivery is held back and sent after the next one to the same target. */
  reorder?: FaultSwitch;
}

export interface Faults {
  api?: ApiFaults;
  webhooks?: WebhookFaults;
}

export const FAULT_KINDS = [
  'error',
  'rateLimit',
  'timeout',
  'timeoutAfter',
  'slow',
  'drop',
  'duplicate',
  'delay',
  'reorder',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What the server does to one request; `delayMs` may come with the others. */
export interface RequestFaults {
  reject?: { status: number; retryAfterSeconds?: number };
  timeout?: 'before' | 'after';
  delayMs?: number;
}

export class FaultConfigError extends Error {
  constructor(field: string, rule: string) {
    super(`faults: ${field} ${rule}`);
    this.name = 'FaultConfigError';
  }
}

function checkSwitch(value: FaultSwitch | undefined, field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null)
    throw new FaultConfigError(field, 'must be an object with a rate');
  if (!(typeof value.rate === 'number' && value.rate >= 0 && value.rate <= 1))
    throw new FaultConfigError(`${field}.rate`, `must be a number from 0 to 1 (got ${String(value.rate)})`);
  if (value.count !== undefined && !(Number.isSafeInteger(value.count) && value.count >= 0))
    throw new FaultConfigError(
      `${field}.count`,
      `must be a non-negative integer (got ${String(value.count)})`,
    );
}

function checkDelay(value: number | undefined, field: string, required: boolean): void {
  if (value === undefined && !required) return;
  if (!(typeof value === 'number' && value >= 0))
    throw new FaultConfigError(field, 'must be a non-negative number of milliseconds');
}

/** Validates a configuration; the error names the field and the rule it broke. */
export function checkFaults(faults: Faults): Faults {
  const api = faults.api ?? {};
  if (
    api.routes !== undefined &&
    !(Array.isArray(api.routes) && api.routes.every((r) => typeof r === 'string' && r !== ''))
  )
    throw new FaultConfigError(
      'api.routes',
      'must be a list of route names such as "GET /api/v2.0/projects"',
    );
  checkSwitch(api.error, 'api.error');
  if (
    api.error?.status !== undefined &&
    !(Number.isInteger(api.error.status) && api.error.status >= 500 && api.error.status <= 599)
  )
    throw new FaultConfigError('api.error.status', `must be a 5xx status (got ${api.error.status})`);
  checkSwitch(api.rateLimit, 'api.rateLimit');
  if (api.rateLimit?.retryAfterSeconds !== undefined && !(api.rateLimit.retryAfterSeconds >= 0))
    throw new FaultConfigError('api.rateLimit.retryAfterSeconds', 'must be a non-negative number');
  checkSwitch(api.timeout, 'api.timeout');
  checkSwitch(api.slow, 'api.slow');
  if (api.slow) checkDelay(api.slow.delayMs, 'api.slow.delayMs', true);
  const hooks = faults.webhooks ?? {};
  checkSwitch(hooks.drop, 'webhooks.drop');
  checkSwitch(hooks.duplicate, 'webhooks.duplicate');
  checkSwitch(hooks.reorder, 'webhooks.reorder');
  checkSwitch(hooks.delay, 'webhooks.delay');
  if (hooks.delay) checkDelay(hooks.delay.delayMs, 'webhooks.delay.delayMs', true);
  return structuredClone(faults);
}

function routeMatches(patterns: string[] | undefined, route: string): boolean {
  if (!patterns) return true;
  return patterns.some((pattern) =>
    pattern.endsWith('*') ? route.startsWith(pattern.slice(0, -1)) : pattern === route,
  );
}

/** The current switches and how often each fired. */
export class FaultInjector {
  private faults: Faults;
  readonly fired = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;

  constructor(
    private readonly random: Random,
    faults: Faults = {},
  ) {
    this.faults = checkFaults(faults);
  }

  /** Replaces every switch; `{}` turns all faults off. */
  set(faults: Faults): void {
    this.faults = checkFaults(faults);
  }

  get(): Faults {
    return structuredClone(this.faults);
  }

  resetCounts(): void {
    for (const kind of FAULT_KINDS) this.fired[kind] = 0;
  }

  private fire(value: FaultSwitch | undefined, kind: FaultKind): boolean {
    if (!value || value.rate <= 0 || value.count === 0) return false;
    if (this.random() >= value.rate) return false;
    if (value.count !== undefined) value.count -= 1;
    this.fired[kind] += 1;
    return true;
  }

  /** Decides the faults of one API request. */
  forRequest(route: string): RequestFaults {
    const api = this.faults.api;
    if (!api || !routeMatches(api.routes, route)) return {};
    const result: RequestFaults = {};
    if (this.fire(api.error, 'error')) result.reject = { status: api.error!.status ?? 500 };
    else if (this.fire(api.rateLimit, 'rateLimit'))
      result.reject = { status: 429, retryAfterSeconds: api.rateLimit!.retryAfterSeconds ?? 1 };
    else if (api.timeout && this.fire(api.timeout, api.timeout.afterProcessing ? 'timeoutAfter' : 'timeout'))
      result.timeout = api.timeout.afterProcessing ? 'after' : 'before';
    if (!result.reject && !result.timeout && this.fire(api.slow, 'slow')) result.delayMs = api.slow!.delayMs;
    return result;
  }

  /** Decides the faults of one webhook delivery. */
  forDelivery(): { drop: boolean; duplicate: boolean; delayMs: number; reorder: boolean } {
    const hooks = this.faults.webhooks ?? {};
    const drop = this.fire(hooks.drop, 'drop');
    if (drop) return { drop, duplicate: false, delayMs: 0, reorder: false };
    return {
      drop,
      duplicate: this.fire(hooks.duplicate, 'duplicate'),
      delayMs: this.fire(hooks.delay, 'delay') ? hooks.delay!.delayMs : 0,
      reorder: this.fire(hooks.reorder, 'reorder'),
    };
  }
}

type Env = Record<string, string | undefined>;

function envRate(env: Env, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!(value >= 0 && value <= 1))
    throw new FaultConfigError(name, `must be a number from 0 to 1 (got ${text})`);
  return value;
}

function envMs(env: Env, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!(value >= 0)) throw new FaultConfigError(name, `must be a non-negative number (got ${text})`);
  return value;
}

/**
 * Faults from the environment: `HARBOR_EMULATOR_FAULTS` holds a whole JSON configuration; the
 * `HARBOR_FAULT_*` shortcuts (rates from 0 to 1) add to it:
 * `HARBOR_FAULT_5XX_RATE`, `HARBOR_FAULT_429_RATE` (+ `HARBOR_FAULT_RETRY_AFTER_S`),
 * `HARBOR_FAULT_TIMEOUT_RATE`, `HARBOR_FAULT_SLOW_RATE` (+ `HARBOR_FAULT_SLOW_MS`),
 * `HARBOR_FAULT_WEBHOOK_DROP_RATE`, `_DUPLICATE_RATE`, `_REORDER_RATE`, `_DELAY_RATE` (+ `_DELAY_MS`).
 */
export function faultsFromEnv(env: Env): Faults {
  let faults: Faults = {};
  const json = env.HARBOR_EMULATOR_FAULTS;
  if (json) {
    try {
      faults = JSON.parse(json) as Faults;
    } catch {
      throw new FaultConfigError('HARBOR_EMULATOR_FAULTS', 'must be JSON');
    }
  }
  const api: ApiFaults = { ...faults.api };
  const hooks: WebhookFaults = { ...faults.webhooks };
  const rate = (name: string) => envRate(env, name);
  let value: number | undefined;
  if ((value = rate('HARBOR_FAULT_5XX_RATE')) !== undefined) api.error = { rate: value };
  if ((value = rate('HARBOR_FAULT_429_RATE')) !== undefined)
    api.rateLimit = { rate: value, retryAfterSeconds: envMs(env, 'HARBOR_FAULT_RETRY_AFTER_S', 1) };
  if ((value = rate('HARBOR_FAULT_TIMEOUT_RATE')) !== undefined) api.timeout = { rate: value };
  if ((value = rate('HARBOR_FAULT_SLOW_RATE')) !== undefined)
    api.slow = { rate: value, delayMs: envMs(env, 'HARBOR_FAULT_SLOW_MS', 2000) };
  if ((value = rate('HARBOR_FAULT_WEBHOOK_DROP_RATE')) !== undefined) hooks.drop = { rate: value };
  if ((value = rate('HARBOR_FAULT_WEBHOOK_DUPLICATE_RATE')) !== undefined) hooks.duplicate = { rate: value };
  if ((value = rate('HARBOR_FAULT_WEBHOOK_REORDER_RATE')) !== undefined) hooks.reorder = { rate: value };
  if ((value = rate('HARBOR_FAULT_WEBHOOK_DELAY_RATE')) !== undefined)
    hooks.delay = { rate: value, delayMs: envMs(env, 'HARBOR_FAULT_WEBHOOK_DELAY_MS', 2000) };
  return checkFaults({ api, webhooks: hooks });
}
