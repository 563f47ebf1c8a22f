import {
  upgradeExecutionRequest,
  upgradeUpdate,
  validateExecutionRequest,
  validateUpdate,
  type Ivoa,
} from '@srcnet/execution-step-schema';
import { isAdmin, STEP_CHANGED, type Identity, type StepPubSub } from '@srcnet/service-kit';
import {
  applyComponentPhase,
  applyEvent,
  noEffects,
  type Effects,
  type TimerEvent,
} from '../lifecycle/apply.ts';
import { CLIENT_UPDATES, canTransition, clientOptions, type StepEvent } from '../lifecycle/transitions.ts';
import { parseObservation, type Observation } from '../estimates/index.ts';
import { checkRequest } from '../offers/checks.ts';
import { zeroEstimate, type EstimateSource } from '../offers/estimate.ts';
import { makeOffers, type OfferRules } from '../offers/make.ts';
import { ClientError, invalidDocument, notFound } from './errors.ts';
import { componentsOf, type OfferSetRecord, type StepRecord } from './model.ts';
import * as store from './store.ts';

/**
 * The broker's use cases. Every change happens in one transaction that also writes the step's
 * history and queues its timers and worker commands; the change is published after the commit.
 */

export interface JobQueue {
  enqueue(
    tx: store.Db,
    job: { kind: string; key: string; payload: unknown; runAt?: number },
  ): Promise<unknown>;
  cancel(tx: store.Db, key: string): Promise<unknown>;
}

export interface Transactions {
  dialect: 'sqlite' | 'postgres';
  db: store.Db;
  transaction<T>(fn: (tx: store.Db) => Promise<T>): Promise<T>;
}

export interface BrokerOptions {
  rules: OfferRules;
  estimate: EstimateSource;
  /** Told, once it is committed, of each preparation observation a callback carried. */
  learn?: (observation: Observation) => void;
  /** Which worker does what: the URL commands for a component are sent to. */
  workerFor: (component: { role: string; kind: string }) => string;
  now?: () => number;
  /** Told about each committed phase change and applied callback, for metrics. */
  observer?: {
    transition(to: string): void;
    callback(source: string, delayMs: number): void;
  };
}

/** A transaction someone else opened (the job engine's), with its after-commit hook. */
export interface OuterTransaction {
  tx: store.Db;
  afterCommit(fn: () => void): void;
}

/** What one transaction changed, reported once it commits. */
interface Changes {
  steps: StepRecord[];
  transitions: string[];
  observations: Observation[];
}

export const TIMER_JOB = 'step.timer';
export const COMMAND_JOB = 'worker.command';
const HISTORY_PER_WRITE = 16;

export interface TimerPayload {
  stepId: string;
  event: TimerEvent;
}
/**
 * A command as queued. The step and the callback URL are added when it is sent: the worker gets
 * the step as it is then, the broker's address may have changed, and the queue stays small.
 */
export type QueuedCommand = Omit<Ivoa.WorkerCommand, 'callbackUrl' | 'step'>;
export interface CommandPayload {
  target: string;
  command: QueuedCommand;
}

export class Broker {
  private readonly now: () => number;

  constructor(
    private readonly db: Transactions,
    private readonly queue: JobQueue,
    private readonly pubsub: StepPubSub,
    private readonly options: BrokerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Runs fn in a transaction (its own, or the job engine's when given) and publishes what it
   * changed once that transaction commits.
   */
  private async change<T>(
    fn: (tx: store.Db, changed: Changes) => Promise<T>,
    outer?: OuterTransaction,
  ): Promise<T> {
    const changed: Changes = { steps: [], transitions: [], observations: [] };
    const publish = () => {
      for (const step of changed.steps) {
        void this.pubsub.publish(STEP_CHANGED, {
          id: step.id,
          owner: step.owner,
          phase: step.phase,
          at: step.modified,
        });
      }
      for (const to of changed.transitions) this.options.observer?.transition(to);
      for (const observation of changed.observations) this.options.learn?.(observation);
    };
    if (outer) {
      const result = await fn(outer.tx, changed);
      outer.afterCommit(publish);
      return result;
    }
    const result = await this.db.transaction((tx) => fn(tx, changed));
    publish();
    return result;
  }

  /** Writes what an event did: the step (new, or changed), its history, timers and commands. */
  private async persist(
    tx: store.Db,
    record: StepRecord,
    effects: Effects,
    changed: Changes,
    write: 'insert' | 'update' = 'update',
  ): Promise<StepRecord> {
    const saved =
      write === 'insert' ? await store.insertStep(tx, record) : await store.updateStep(tx, record);
    await this.persistEffects(tx, saved, effects);
    changed.steps.push(saved);
    changed.transitions.push(...effects.history.map((entry) => entry.to));
    return saved;
  }

  private async persistEffects(tx: store.Db, record: StepRecord, effects: Effects) {
    // Each write bumps the version once and adds at most a few entries, so version-based
    // numbers are unique and in order without reading the last one back.
    await store.appendHistory(
      tx,
      effects.history.map((entry, i) => ({ ...entry, seq: record.version * HISTORY_PER_WRITE + i })),
    );
    for (const [event, at] of effects.timers) {
      if (at === null) {
        await this.queue.cancel(tx, timerKey(record.id, event));
        continue;
      }
      await this.queue.enqueue(tx, {
        kind: TIMER_JOB,
        key: timerKey(record.id, event),
        payload: { stepId: record.id, event } satisfies TimerPayload,
        runAt: at,
      });
    }
    for (const { action, component } of effects.commands) {
      const command: QueuedCommand = {
        commandId: `${record.id}:${component.uuid}:${action}`,
        action,
        stepId: record.id,
        owner: record.owner,
        component: { role: component.role, uuid: component.uuid, kind: component.kind },
      };
      await this.queue.enqueue(tx, {
        kind: COMMAND_JOB,
        key: command.commandId,
        payload: { target: this.options.workerFor(component), command } satisfies CommandPayload,
      });
    }
  }

  private parseRequest(document: unknown): { request: Ivoa.ExecutionRequest; notes: string[] } {
    const upgraded = upgradeExecutionRequest(document);
    const validated = validateExecutionRequest(upgraded.document);
    const issues = [...upgraded.issues, ...(validated.ok ? [] : validated.issues)];
    if (!validated.ok || issues.length) {
      const seen = new Set<string>();
      throw invalidDocument(
        issues.filter(
          (issue) => !seen.has(`${issue.path} ${issue.rule}`) && seen.add(`${issue.path} ${issue.rule}`),
        ),
      );
    }
    return { request: validated.value as Ivoa.ExecutionRequest, notes: upgraded.notes };
  }

  /** IVOA POST /requests; GraphQL requestOffers. */
  async requestOffers(
    identity: Identity,
    document: unknown,
  ): Promise<{ offerSet: OfferSetRecord; offers: StepRecord[] }> {
    const { request, notes } = this.parseRequest(document);
    return this.offer(identity, request, notes, false);
  }

  /** IVOA POST /direct; GraphQL executeDirect. The single offer is accepted at once. */
  async executeDirect(
    identity: Identity,
    document: unknown,
  ): Promise<{ offerSet: OfferSetRecord; step: StepRecord | undefined }> {
    const { request, notes } = this.parseRequest(document);
    const { offerSet, offers } = await this.offer(identity, request, notes, true);
    return { offerSet, step: offers[0] };
  }

  private async offer(identity: Identity, request: Ivoa.ExecutionRequest, notes: string[], direct: boolean) {
    const rules = this.options.rules;
    const checked = checkRequest(request, rules.limits, new Date(this.now()));
    // Before the transaction: the estimate may wait for a worker, and the bookings stay locked
    // only while offers are cut.
    const estimate = checked.fatal ? zeroEstimate() : await this.options.estimate(checked);
    return this.change(async (tx, changed) => {
      await store.lockBookings(tx, this.db.dialect);
      const now = this.now();
      const made = makeOffers({
        request,
        checked,
        owner: identity.user,
        now,
        bookings: await store.bookings(tx, now, now + rules.lookAheadMs + rules.maxChunkMs),
        rules,
        estimate,
        maxOffers: direct ? 1 : rules.maxOffers,
        notes,
      });
      const offerSet: OfferSetRecord = {
        id: made.offerSet.meta!.uuid!,
        owner: identity.user,
        result: made.offerSet.result,
        created: now,
        expires: made.expires,
        document: { ...made.offerSet, offers: undefined },
      };
      await store.insertOfferSet(tx, offerSet);
      const offers: StepRecord[] = made.offers.map((offer) => ({
        id: offer.document.meta!.uuid!,
        offerSetId: offerSet.id,
        owner: identity.user,
        phase: 'INITIAL',
        executableKind: offer.document.executable?.kind ?? null,
        created: now,
        modified: now,
        expires: made.expires,
        availableStart: offer.start,
        availableEnd: offer.end,
        cores: offer.cores,
        memoryGiB: offer.memoryGiB,
        storageGiB: offer.storageGiB,
        document: { ...offer.document, phase: 'INITIAL' },
        estimates: offer.estimates,
        version: 0,
      }));
      const saved: StepRecord[] = [];
      for (const offer of offers) {
        const effects = noEffects();
        applyEvent(offer, 'offer', direct ? 'client:direct' : 'client:request', now, effects);
        if (direct) applyEvent(offer, 'accept', 'client:direct', now, effects);
        saved.push(await this.persist(tx, offer, effects, changed, 'insert'));
      }
      return { offerSet, offers: saved };
    });
  }

  private visible(identity: Identity, record: { owner: string } | undefined): boolean {
    return record !== undefined && (record.owner === identity.user || isAdmin(identity));
  }

  async getStep(identity: Identity, id: string): Promise<StepRecord | undefined> {
    const step = await store.getStep(this.db.db, id);
    return this.visible(identity, step) ? step : undefined;
  }

  async getOfferSet(
    identity: Identity,
    id: string,
  ): Promise<{ offerSet: OfferSetRecord; offers: StepRecord[] } | undefined> {
    const offerSet = await store.getOfferSet(this.db.db, id);
    if (!this.visible(identity, offerSet)) return undefined;
    return { offerSet: offerSet!, offers: await store.stepsOfOfferSet(this.db.db, id) };
  }

  /** IVOA POST /sessions/{uuid}: an update body; enum-value updates of `phase` accept, reject or cancel. */
  async update(identity: Identity, id: string, document: unknown): Promise<StepRecord> {
    const upgraded = upgradeUpdate(document);
    const validated = validateUpdate(upgraded.document);
    if (!validated.ok) throw invalidDocument(validated.issues);
    const update = validated.value as Ivoa.Update;
    const path = update.path.replace(/^\//, '');
    if (update.kind !== 'uri:enum-value-update' || path !== 'phase') {
      throw new ClientError(
        `this broker changes a step only by an enum-value update of phase; got ${update.kind} of ${update.path}`,
        400,
        'BAD_USER_INPUT',
        [
          {
            path: '/kind',
            rule: 'supported-update',
            message: 'only uri:enum-value-update of path phase is supported',
          },
        ],
      );
    }
    const value = String((update as Ivoa.EnumValueUpdate).value);
    const event = CLIENT_UPDATES[value];
    if (!event) {
      throw new ClientError(
        `phase can be set to ${Object.keys(CLIENT_UPDATES).join(', ')}; not ${value}`,
        400,
        'BAD_USER_INPUT',
        [
          {
            path: '/value',
            rule: 'enum',
            message: `must be one of ${Object.keys(CLIENT_UPDATES).join(', ')}`,
          },
        ],
      );
    }
    return this.clientEvent(identity, id, event);
  }

  /** Accept, reject or cancel on behalf of the step's owner. */
  clientEvent(identity: Identity, id: string, event: StepEvent): Promise<StepRecord> {
    return this.change(async (tx, changed) => {
      const step = await store.getStepForUpdate(tx, id, this.db.dialect);
      if (!this.visible(identity, step)) throw notFound('step', id);
      const now = this.now();
      const record = step!;
      if (!canTransition(record.phase, event)) {
        const allowed = clientOptions(record.phase);
        throw new ClientError(
          `cannot ${event} step ${id}: it is ${record.phase}; ${allowed.length ? `it can be set to ${allowed.join(' or ')}` : 'it can no longer be changed'}`,
          409,
          'INVALID_TRANSITION',
        );
      }
      if (event === 'accept' && record.expires !== null && record.expires <= now) {
        throw new ClientError(
          `cannot accept step ${id}: the offer expired at ${new Date(record.expires).toISOString()}; ask for new offers`,
          409,
          'OFFER_EXPIRED',
        );
      }
      const effects = noEffects();
      applyEvent(record, event, `client:${event}`, now, effects);
      const saved = await this.persist(tx, record, effects, changed);
      if (event === 'accept' && record.offerSetId) {
        for (const sibling of await store.stepsOfOfferSet(tx, record.offerSetId)) {
          if (sibling.id === id || sibling.phase !== 'OFFERED') continue;
          const siblingEffects = noEffects();
          applyEvent(sibling, 'sibling-accepted', `client:accept ${id}`, now, siblingEffects);
          await this.persist(tx, sibling, siblingEffects, changed);
        }
      }
      return saved;
    });
  }

  /** A durable timer fired. Idempotent: a timer for a step that has moved on changes nothing. */
  async onTimer({ stepId, event }: TimerPayload, outer?: OuterTransaction): Promise<void> {
    await this.change(async (tx, changed) => {
      const record = await store.getStepForUpdate(tx, stepId, this.db.dialect);
      if (!record) return;
      const now = this.now();
      const effects = noEffects();
      if (event === 'release' && record.phase === 'PREPARING') {
        const meta = (record.document.meta ??= {});
        const text = 'the step was not ready before the end of its available window';
        meta.messages = [
          ...(meta.messages ?? []),
          {
            kind: 'urn:not-ready',
            level: 'ERROR',
            time: new Date(now).toISOString(),
            template: text,
            message: text,
          },
        ];
        applyEvent(record, 'fail', 'timer:window-end', now, effects);
      } else if (canTransition(record.phase, event)) {
        applyEvent(record, event, `timer:${event}`, now, effects);
      } else return;
      await this.persist(tx, record, effects, changed);
    }, outer);
  }

  /**
   * A worker's callback, applied in the caller's request so that a 2xx means it is committed.
   * Repeats (same or older sequence for the component) change nothing.
   */
  async applyCallback(callback: Ivoa.ComponentCallback, source: string): Promise<'applied' | 'ignored'> {
    const outcome = await this.change(async (tx, changed) => {
      const record = await store.getStepForUpdate(tx, callback.stepId, this.db.dialect);
      if (!record) throw notFound('step', callback.stepId);
      const claimed = await store.claimCallbackSequence(
        tx,
        record.id,
        callback.componentUuid,
        callback.sequence,
        this.now(),
      );
      if (!claimed) return 'ignored';
      await this.recordObservation(tx, record, callback, changed);
      const effects = noEffects();
      const moved = applyComponentPhase(record, callback, `callback:${source}`, this.now(), effects);
      if (!moved && !callback.progress) {
        await this.persistEffects(tx, record, effects);
        return 'ignored' as const;
      }
      // Progress alone changes the step too (a copy started, bytes staged): subscribers learn of
      // a change by its modification time.
      if (!moved) record.modified = this.now();
      await this.persist(tx, record, effects, changed);
      return 'applied' as const;
    });
    this.options.observer?.callback(source, this.now() - Date.parse(callback.at));
    return outcome;
  }

  /**
   * Keeps what a callback says a preparation action took, with the component it was for. One that
   * breaks the trace rules (ARCHITECTURE.md, "Estimation history") would mislead the estimator
   * and is left out; the callback itself still applies.
   */
  private async recordObservation(
    tx: store.Db,
    record: StepRecord,
    callback: Ivoa.ComponentCallback,
    changed: Changes,
  ) {
    if (!callback.observation) return;
    let observation: Observation;
    try {
      observation = parseObservation(callback.observation, 1);
    } catch {
      return;
    }
    const component = componentsOf(record.document).find((c) => c.uuid === callback.componentUuid);
    await store.insertObservation(tx, {
      eventId: callback.eventId,
      stepId: record.id,
      componentUuid: callback.componentUuid,
      role: component?.role ?? 'unknown',
      kind: component?.kind ?? 'unknown',
      observation,
      recordedAt: this.now(),
    });
    changed.observations.push(observation);
  }

  listSteps(identity: Identity, query: Omit<store.StepQuery, 'owner'>): Promise<StepRecord[]> {
    return store.listSteps(this.db.db, { ...query, owner: isAdmin(identity) ? undefined : identity.user });
  }

  history(ids: readonly string[]) {
    return store.historyOf(this.db.db, ids);
  }

  steps(ids: readonly string[]) {
    return store.getSteps(this.db.db, ids);
  }

  offerSets(ids: readonly string[]) {
    return store.getOfferSets(this.db.db, ids);
  }

  /** Whether the caller may see this step or offer set. */
  canSee(identity: Identity, record: { owner: string } | undefined): boolean {
    return this.visible(identity, record);
  }
}

export const timerKey = (stepId: string, event: TimerEvent) => `timer:${event}:${stepId}`;
