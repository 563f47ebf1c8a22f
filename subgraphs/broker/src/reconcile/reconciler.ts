/**
 * Reconciliation with the workers (docs/reliability.md, "Lost notifications"): a worker callback
 * that never arrived must not leave a step hanging. A pass asks each configured worker, in batched
 * calls, for the last callback it generated for every component of an unfinished step that has
 * been quiet for the interval, and applies each through the path a real callback takes (source
 * `reconcile`): one the broker already has is ignored by its sequence, so a pass is idempotent.
 *
 * Passes are jobs of the broker's engine, so that with several instances one runs each pass: a
 * start-up pass per instance start, and one per interval slot whose key all instances share.
 */
import { randomUUID } from 'node:crypto';
import { schemaNameForKind, validateComponentCallback, type Ivoa } from '@srcnet/execution-step-schema';
import { fetchLatestCallbacks, MAX_LATEST_COMPONENTS } from '@srcnet/service-kit';
import type { StepPhase } from '../lifecycle/transitions.ts';
import type { Broker } from '../steps/service.ts';
import { componentsOf } from '../steps/model.ts';
import * as store from '../steps/store.ts';

export const RECONCILE_JOB = 'workers.reconcile';

export type WorkerName = 'skaha' | 'preparedata' | 'harbor';

/** Which worker prepares what: images in Harbor, sessions in Skaha, data and storage in prepareData. */
export function workerNameFor(component: { role: string; kind: string }): WorkerName {
  if (component.role === 'executable')
    return schemaNameForKind(component.kind) === 'DockerContainer' ? 'harbor' : 'skaha';
  return component.role === 'compute' ? 'skaha' : 'preparedata';
}

/** Steps whose components a worker is preparing, holding or releasing. */
const STEP_PHASES: readonly StepPhase[] = ['PREPARING', 'AVAILABLE', 'RUNNING', 'RELEASING'];
/** Component phases in which the next change is the worker's to report. */
const COMPONENT_PHASES: ReadonlySet<Ivoa.LifecyclePhase> = new Set([
  'PREPARING',
  'AVAILABLE',
  'RUNNING',
  'RELEASING',
]);

export interface ReconcilerOptions {
  db: store.Db;
  broker: Pick<Broker, 'applyCallback'>;
  /** Base URLs of the configured workers; a worker left out is simulated and not asked. */
  workers: Partial<Record<WorkerName, string>>;
  secret: string;
  /** BROKER_RECONCILE_SECONDS in ms; 0: a pass at start-up only. */
  intervalMs: number;
  log: {
    info(fields: object, message: string): void;
    warn(fields: object, message: string): void;
  };
  /** Told of each callback a pass applied (the broker had missed it). */
  recovered(worker: WorkerName): void;
  now?: () => number;
}

export interface PassOutcome {
  /** Components asked about, per worker. */
  asked: Partial<Record<WorkerName, number>>;
  recovered: number;
}

export class Reconciler {
  private readonly now: () => number;

  constructor(private readonly options: ReconcilerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The jobs to enqueue when this instance starts: its own start-up pass and the next periodic one. */
  startJobs(): { kind: string; key: string; payload: unknown; runAt?: number }[] {
    const next = this.nextJob();
    return [
      { kind: RECONCILE_JOB, key: `reconcile:start:${randomUUID()}`, payload: {} },
      ...(next ? [next] : []),
    ];
  }

  /**
   * The periodic pass of the interval slot after now, keyed by slot: every instance (and every
   * pass) proposes the same key, so one job exists per slot.
   */
  nextJob(): { kind: string; key: string; payload: unknown; runAt: number } | undefined {
    const every = this.options.intervalMs;
    if (every <= 0) return undefined;
    const slot = Math.floor(this.now() / every) + 1;
    return { kind: RECONCILE_JOB, key: `reconcile:${every}:${slot}`, payload: {}, runAt: slot * every };
  }

  /** One pass over every worker; a worker that does not answer is logged and asked again next pass. */
  async pass(): Promise<PassOutcome> {
    const { db, workers, intervalMs } = this.options;
    const now = this.now();
    const wanted = new Map<WorkerName, Map<string, string>>();
    const candidates: { uuid: string; stepId: string; worker: WorkerName }[] = [];
    for (const step of await store.stepsInPhases(db, STEP_PHASES)) {
      for (const component of componentsOf(step.document)) {
        if (!COMPONENT_PHASES.has(component.phase)) continue;
        const worker = workerNameFor(component);
        if (workers[worker]) candidates.push({ uuid: component.uuid, stepId: step.id, worker });
      }
    }
    const times = await store.callbackTimes(
      db,
      candidates.map((c) => c.uuid),
    );
    for (const candidate of candidates) {
      const at = times.get(candidate.uuid);
      if (at !== undefined && at !== null && at > now - intervalMs) continue;
      const of = wanted.get(candidate.worker) ?? new Map<string, string>();
      of.set(candidate.uuid, candidate.stepId);
      wanted.set(candidate.worker, of);
    }
    const outcome: PassOutcome = { asked: {}, recovered: 0 };
    await Promise.all(
      [...wanted].map(async ([worker, components]) => {
        outcome.asked[worker] = components.size;
        outcome.recovered += await this.ask(worker, components);
      }),
    );
    return outcome;
  }

  /** Asks one worker about these components (uuid → step), in batches; returns how many applied. */
  private async ask(worker: WorkerName, components: Map<string, string>): Promise<number> {
    const { log, secret } = this.options;
    const url = this.options.workers[worker]!;
    const uuids = [...components.keys()];
    let recovered = 0;
    for (let i = 0; i < uuids.length; i += MAX_LATEST_COMPONENTS) {
      let answers: unknown[];
      try {
        answers = await fetchLatestCallbacks(url, secret, uuids.slice(i, i + MAX_LATEST_COMPONENTS));
      } catch (error) {
        log.warn({ err: error, worker }, 'reconciliation: the worker did not answer; asking again next pass');
        return recovered;
      }
      for (const answer of answers) {
        const validated = validateComponentCallback(answer);
        const callback = validated.ok ? (validated.value as Ivoa.ComponentCallback) : undefined;
        if (!callback || components.get(callback.componentUuid) !== callback.stepId) {
          log.warn(
            { worker, issues: validated.ok ? undefined : validated.issues },
            'reconciliation: the worker answered a callback that was not asked for or is invalid; skipped',
          );
          continue;
        }
        try {
          if ((await this.options.broker.applyCallback(callback, 'reconcile')) !== 'applied') continue;
        } catch (error) {
          log.warn({ err: error, worker, step: callback.stepId }, 'reconciliation: callback not applied');
          continue;
        }
        recovered++;
        this.options.recovered(worker);
        log.info(
          {
            worker,
            step: callback.stepId,
            component: callback.componentUuid,
            phase: callback.phase,
            sequence: callback.sequence,
            generatedAt: callback.at,
          },
          'reconciliation: applied a callback the broker had missed',
        );
      }
    }
    return recovered;
  }
}
