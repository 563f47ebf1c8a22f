import { GraphQLError, parse, type DocumentNode, type ExecutionResult } from 'graphql';
import { isAdmin, type Identity } from '@srcnet/service-kit';
import { GATEWAY_IDENTITY } from './feed.ts';
import type { StepOperation } from './operation.ts';
import { SubscriberQueue } from './queue.ts';

/** Runs an operation through the gateway (planning, subgraph fetches, masking) as the given caller. */
export type Execute = (
  document: DocumentNode,
  variables: Record<string, unknown>,
  identity: Identity,
) => Promise<ExecutionResult>;

/** What the fan-out reports, for /metrics. */
export interface FanoutObserver {
  subscribed(): void;
  unsubscribed(): void;
  notice(): void;
  fetch(): void;
  /** An event handed to a subscriber; `at` is when its change was committed (epoch ms). */
  delivered(at: number): void;
}

const STEP_STATE = parse(
  'query GatewayStepState($id: ID!) { executionStep(id: $id) { phase meta { owner modified } history { to at } } }',
);
interface StepState {
  phase: string;
  meta: { owner: string; modified: string };
  history: { to: string; at: string }[];
}
/** A step as the broker lists it: enough to tell whether the subscribers were told of it. */
export interface ListedStep {
  id: string;
  meta: { owner: string; modified: string };
}
/** One event to deliver: a phase transition, or a change that left the phase as it was. */
interface StepEvent {
  /** The transition's phase, or for a change that left the phase, the phase it left. */
  phase: string;
  transition: boolean;
  at: number;
}

interface Subscriber {
  stepId: string | undefined;
  queue: SubscriberQueue;
}

/** Subscribers who share every fetch: same selection, same variables, same visibility. */
interface Group {
  key: string;
  operation: StepOperation;
  variables: Record<string, unknown>;
  /** Whom fetches run as: the user, or any admin for a group of admins. */
  identity: Identity;
  /** Subscribed to all their steps, and per step id. */
  all: Set<Subscriber>;
  byStep: Map<string, Set<Subscriber>>;
  /** Per step, the last result delivered: a change that leaves it as it was is no event. */
  last: Map<string, string>;
}

const REMEMBERED_STEPS = 100_000;
const FINAL_PHASES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'REJECTED', 'EXPIRED']);

/**
 * The fan-out of `executionStepChanged`. Each change notice (one stream per gateway, see feed.ts)
 * is read once: the step's owner, last modification and history. Every subscriber group that may
 * see the step and watches it then gets one fetch of its selection, through the gateway and so
 * with fields from every subgraph, and its result goes to all the group's subscribers, with
 * `phase` set to each transition the change made. Changes of one step are processed in order;
 * different steps in parallel. Every fetch is made afresh, so every event carries the values of
 * the moment; only the last result per group and step is kept, to drop a change that changed
 * nothing the group selected.
 */
export class Fanout {
  private readonly groups = new Map<string, Group>();
  private readonly groupsByUser = new Map<string, Set<Group>>();
  private readonly adminGroups = new Set<Group>();
  /** Per step, how much of it the subscribers have been told: transitions and last modification. */
  private readonly known = new Map<string, { transitions: number; modified: string }>();
  private readonly chains = new Map<string, Promise<void>>();
  /** Notices whose step could not be read (a subgraph restarting): read again at the next catch-up. */
  private readonly unread = new Set<string>();
  /**
   * Per group and step, events whose fetch failed, kept in order: later events for that group and
   * step wait behind them, so that a subscriber never sees phases out of order.
   */
  private readonly undelivered = new Map<string, { group: Group; stepId: string; events: StepEvent[] }>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly options: {
      execute: Execute;
      queueLimit: number;
      observer: FanoutObserver;
      onError: (error: unknown) => void;
    },
  ) {}

  get subscriberCount(): number {
    let count = 0;
    for (const group of this.groups.values()) {
      count += group.all.size;
      for (const set of group.byStep.values()) count += set.size;
    }
    return count;
  }

  /** Takes a change notice from the feed. */
  onChange(stepId: string): void {
    this.enqueue(stepId, () =>
      this.process(stepId).catch((error: unknown) => {
        this.unread.add(stepId);
        throw error;
      }),
    );
  }

  /** Changes of one step are handled in order, one after the other. */
  private enqueue(stepId: string, work: () => Promise<void>): void {
    const previous = this.chains.get(stepId) ?? Promise.resolve();
    const next = previous.then(work).catch(this.options.onError);
    this.chains.set(stepId, next);
    void next.then(() => {
      if (this.chains.get(stepId) === next) this.chains.delete(stepId);
    });
  }

  /**
   * Steps the feed may not have announced (see catch-up.ts): each one changed since the
   * subscribers last heard of it, and that some subscriber may see, is processed as a change.
   */
  catchUp(steps: ListedStep[]): void {
    for (const step of steps) {
      if (this.known.get(step.id)?.modified === step.meta.modified) continue;
      if (!this.adminGroups.size && !this.groupsByUser.has(step.meta.owner)) continue;
      this.onChange(step.id);
    }
  }

  /** Reads again the steps it could not read, and fetches again for the events it could not deliver. */
  retryFailed(): void {
    const unread = [...this.unread];
    this.unread.clear();
    for (const stepId of unread) this.onChange(stepId);
    for (const [key, { group, stepId }] of this.undelivered) {
      this.enqueue(stepId, async () => {
        const waiting = this.undelivered.get(key);
        if (!waiting) return;
        this.undelivered.delete(key);
        if (this.groups.get(group.key) === group) await this.deliver(group, stepId, waiting.events);
      });
    }
  }

  /**
   * A new subscriber: the current state first (the step, or the caller's active steps), then every
   * change. Resolves to an ExecutionResult with errors when the step is not the caller's to see.
   */
  async subscribe(
    operation: StepOperation,
    variables: Record<string, unknown>,
    identity: Identity,
  ): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const shared = Object.fromEntries(operation.variableNames.map((name) => [name, variables[name]]));
    const stepId =
      operation.stepId && 'literal' in operation.stepId
        ? operation.stepId.literal
        : ((variables[operation.stepId?.variable ?? ''] as string | null | undefined) ?? undefined);
    const group = this.groupFor(operation, shared, identity);
    const subscriber: Subscriber = {
      stepId,
      queue: new SubscriberQueue(this.options.queueLimit, () => this.remove(group, subscriber)),
    };
    this.add(group, subscriber);
    try {
      const current = stepId
        ? await this.options.execute(operation.stepQuery, { ...shared, gatewayStepId: stepId }, identity)
        : await this.options.execute(operation.activeStepsQuery, shared, identity);
      if (current.errors?.length && !current.data) {
        void subscriber.queue.return();
        return current;
      }
      if (stepId) {
        if (current.data?.[operation.rootKey] == null) {
          void subscriber.queue.return();
          return { errors: [new GraphQLError(`no step ${stepId}`, { extensions: { code: 'NOT_FOUND' } })] };
        }
        if (!group.last.has(stepId)) group.last.set(stepId, JSON.stringify(current));
        subscriber.queue.release([current], true);
      } else {
        const steps = current.data as { steps: { edges: { node: unknown }[] } };
        subscriber.queue.release(
          steps.steps.edges.map((edge) => ({ data: { [operation.rootKey]: edge.node } })),
          false,
        );
      }
      return subscriber.queue;
    } catch (error) {
      void subscriber.queue.return();
      throw error;
    }
  }

  private async process(stepId: string) {
    this.options.observer.notice();
    const step = await this.readState(stepId);
    if (!step) return;
    const events = this.newEvents(stepId, step);
    if (!events.length) return;
    const groups = [...(this.groupsByUser.get(step.meta.owner) ?? []), ...this.adminGroups];
    await Promise.all(groups.map((group) => this.deliver(group, stepId, events)));
  }

  /**
   * The step's phase, owner, modification and history, read consistently: a subgraph may read a
   * step's row and its history at different commits, which shows as a phase that is not the last
   * transition's; then it is read again.
   */
  private async readState(stepId: string): Promise<StepState | undefined> {
    for (let attempt = 1; ; attempt++) {
      const read = await this.options.execute(STEP_STATE, { id: stepId }, GATEWAY_IDENTITY);
      const step = (read.data as { executionStep: StepState | null } | undefined)?.executionStep;
      if (!step) {
        if (read.errors?.length) throw new Error(`reading step ${stepId}: ${read.errors[0]!.message}`);
        return undefined;
      }
      const last = step.history.at(-1);
      const consistent = last?.to === step.phase && Date.parse(step.meta.modified) >= Date.parse(last.at);
      if (consistent || attempt === 5) return step;
      await new Promise((retry) => setTimeout(retry, 5 * attempt));
    }
  }

  /**
   * What this change means to subscribers: the transitions not yet told, or, when the phase stayed,
   * one event if the step was modified at all. A replay of an unchanged step (the broker's stream
   * reconnecting) means nothing. For a step not seen before, transitions since this gateway started.
   */
  private newEvents(stepId: string, step: StepState): StepEvent[] {
    const before = this.known.get(stepId);
    this.known.delete(stepId);
    this.known.set(stepId, { transitions: step.history.length, modified: step.meta.modified });
    if (this.known.size > REMEMBERED_STEPS) this.known.delete(this.known.keys().next().value!);
    const transitions = before
      ? step.history.slice(before.transitions)
      : step.history.filter((change) => Date.parse(change.at) >= this.startedAt);
    if (transitions.length)
      return transitions.map((change) => ({ phase: change.to, transition: true, at: Date.parse(change.at) }));
    if (before?.modified === step.meta.modified) return [];
    return [{ phase: step.phase, transition: false, at: Date.parse(step.meta.modified) || Date.now() }];
  }

  private async deliver(group: Group, stepId: string, events: StepEvent[]) {
    const key = `${group.key}\n${stepId}`;
    const waiting = this.undelivered.get(key);
    if (waiting) {
      waiting.events.push(...events);
      return;
    }
    try {
      await this.fetchAndPush(group, stepId, events);
    } catch (error) {
      this.undelivered.set(key, { group, stepId, events: [...events] });
      throw error;
    }
  }

  private async fetchAndPush(group: Group, stepId: string, events: StepEvent[]) {
    const members = [...group.all, ...(group.byStep.get(stepId) ?? [])];
    if (!members.length) return;
    const { operation } = group;
    this.options.observer.fetch();
    const result = await this.options.execute(
      operation.stepQuery,
      { ...group.variables, gatewayStepId: stepId },
      group.identity,
    );
    const step = result.data?.[operation.rootKey] as Record<string, unknown> | null | undefined;
    // A step the group may not see is null without errors; null with errors is a failed fetch.
    if (!step && result.errors?.length)
      throw new Error(`fetching step ${stepId}: ${result.errors[0]!.message}`);
    if (result.data && step === null) return;
    // Without a transition, an event is due only when what this group selected changed: a
    // notice can also follow a read that saw the step's row and its history at different commits.
    const text = JSON.stringify(result);
    const unchanged = group.last.get(stepId) === text;
    group.last.delete(stepId);
    if (!events.some((event) => FINAL_PHASES.has(event.phase))) {
      group.last.set(stepId, text);
      if (group.last.size > REMEMBERED_STEPS) group.last.delete(group.last.keys().next().value!);
    }
    for (const event of events) {
      if (!event.transition && unchanged) continue;
      // Each event shows the phase it reports, so that phases reach the subscriber in order even
      // when the fetch, made a moment later, already sees the next one.
      const payload: ExecutionResult =
        step && operation.phaseKeys.length
          ? { ...result, data: { [operation.rootKey]: withPhase(step, operation.phaseKeys, event.phase) } }
          : result;
      for (const member of members) {
        if (member.queue.push(payload)) this.options.observer.delivered(event.at);
      }
    }
  }

  private groupFor(operation: StepOperation, variables: Record<string, unknown>, identity: Identity): Group {
    const admin = isAdmin(identity);
    const visibility = admin ? 'admin' : `user:${identity.user}:${[...identity.roles].sort().join(',')}`;
    const key = `${visibility}\n${operation.selectionKey}\n${JSON.stringify(variables)}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { key, operation, variables, identity, all: new Set(), byStep: new Map(), last: new Map() };
      this.groups.set(key, group);
      if (admin) this.adminGroups.add(group);
      else {
        let groups = this.groupsByUser.get(identity.user);
        if (!groups) this.groupsByUser.set(identity.user, (groups = new Set()));
        groups.add(group);
      }
    }
    return group;
  }

  private add(group: Group, subscriber: Subscriber) {
    if (subscriber.stepId === undefined) group.all.add(subscriber);
    else {
      let set = group.byStep.get(subscriber.stepId);
      if (!set) group.byStep.set(subscriber.stepId, (set = new Set()));
      set.add(subscriber);
    }
    this.options.observer.subscribed();
  }

  private remove(group: Group, subscriber: Subscriber) {
    if (subscriber.stepId === undefined) group.all.delete(subscriber);
    else {
      const set = group.byStep.get(subscriber.stepId);
      set?.delete(subscriber);
      if (set?.size === 0) group.byStep.delete(subscriber.stepId);
    }
    this.options.observer.unsubscribed();
    if (group.all.size || group.byStep.size) return;
    this.groups.delete(group.key);
    this.adminGroups.delete(group);
    const groups = this.groupsByUser.get(group.identity.user);
    groups?.delete(group);
    if (groups?.size === 0) this.groupsByUser.delete(group.identity.user);
  }
}

function withPhase(step: Record<string, unknown>, keys: string[], phase: string) {
  const copy = { ...step };
  for (const key of keys) copy[key] = phase;
  return copy;
}
