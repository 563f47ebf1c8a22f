import type { ResourceContext, SessionType } from '../../src/skaha/types.ts';
import type { Random } from '@srcnet/service-kit';
import { randomId } from '../random.ts';

/** The statuses current Skaha reports (backends.md §1.6). */
export type EmulatedStatus = 'Pending' | 'Running' | 'Completed' | 'Failed' | 'Terminating';
/** Session types plus the apps attached to desktops. */
export type WorkloadType = SessionType | 'desktop-app';

export interface TypeTiming {
  /** From admission (Job start) to Running: scheduling, image pull, container start. */
  startupMs: number;
  /** Running time until the command ends; null runs until deleted or expired. */
  runMs: number | null;
}

/** Overrides the fate of sessions of matching images; the first matching rule applies. */
export interface ImageRule {
  /** An image id, or a prefix ending in `*`. */
  image: string;
  runMs?: number | null;
  outcome?: 'Completed' | 'Failed';
  /** The failure message in events, logs and callbacks. */
  message?: string;
  /** Container log lines. */
  logs?: string[];
}

export interface Capacity {
  cores: number;
  ramGB: number;
  gpus: number;
}

export interface EngineSettings {
  context: ResourceContext;
  /** What all sessions together may request; beyond it sessions stay Pending. */
  cluster: Capacity;
  /** Requests of flexible sessions per type; `context.*.defaultRequest` otherwise. */
  flexRequests: Partial<Record<WorkloadType, { cores: number; ramGB: number }>>;
  timing: Record<WorkloadType, TypeTiming>;
  imageRules: ImageRule[];
  /** Chance that a session fails, 0..1, decided at creation from the seeded random. */
  failureRate: number;
  /** How long a failing session without a run time (interactive ones) runs before failing. */
  failAfterMs: number;
  failureMessage: string;
  /** The Job deadline, and what renew resets the remaining time to. */
  expirySeconds: number;
  /** How long a deleted session stays listed as Terminating. */
  terminatingMs: number;
}

/** What a create asks for, already validated. */
export interface CreatePlan {
  owner: string;
  name: string;
  image: string;
  type: WorkloadType;
  /** Given cores or ram make request = limit (fixed); absent ones come from the flexible defaults. */
  cores?: number;
  ramGB?: number;
  gpus: number;
  cmd?: string;
  args: string[];
  env: Record<string, string>;
}

export interface PodEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  at: number;
}

export interface SessionRecord {
  id: string;
  /** Only for desktop apps, whose `id` is their desktop's. */
  appid?: string;
  owner: string;
  name: string;
  image: string;
  type: WorkloadType;
  /** Memory request == limit: Skaha's `canfar.net/flavor=fixed`. */
  fixed: boolean;
  /** What the pod requests: given values, or the flexible defaults. */
  request: { cores: number; ramGB: number };
  gpus: number;
  cmd?: string;
  args: string[];
  env: Record<string, string>;
  /** The Job's startTime: set on admission, when the pod exists. */
  startedAt?: number;
  runningAt?: number;
  /** When it reached Completed or Failed, giving back its capacity. */
  endedAt?: number;
  deletedAt?: number;
  deadlineSeconds: number;
  status: EmulatedStatus;
  fate: { runMs: number | null; outcome: 'Completed' | 'Failed'; message: string; logs: string[] };
  events: PodEvent[];
  logs: string[];
  /** Metrics-server figures while Running. */
  usage?: { cores: number; ramGB: number };
  /** What the callback extension keeps as Job annotations, so that it survives a restart. */
  notified: { sequence: number; status?: string };
}

export interface StatusChange {
  record: SessionRecord;
  /** `Deleted` when the record is gone. */
  status: EmulatedStatus | 'Deleted';
  message: string;
  at: number;
}

const DEADLINE_MESSAGE = 'Job was active longer than specified deadline';

/**
 * Sessions and their time-driven lifecycle: Pending (queued until the cluster has room, then
 * starting) → Running → Completed | Failed, Failed on deadline, and Terminating → gone after a
 * DELETE. Transitions are computed from timestamps whenever `advance` runs, so a late tick
 * still yields the right order and times.
 */
export class SessionEngine {
  private readonly records = new Map<string, SessionRecord>();

  constructor(
    private readonly settings: EngineSettings,
    /** Ids and usage figures. */
    private readonly random: Random,
    /** Which sessions fail: a stream of its own, so that one seed gives one failure pattern. */
    private readonly fateRandom: Random,
    private readonly onChange: (change: StatusChange) => void,
  ) {}

  /** `prepare` runs before the creation is announced, e.g. to attach a callback registration. */
  create(plan: CreatePlan, now: number, prepare?: (record: SessionRecord) => void): SessionRecord {
    let id: string;
    do id = randomId(this.random, 8);
    while (this.records.has(id));
    const record = this.build(id, plan);
    this.records.set(id, record);
    prepare?.(record);
    this.notify(record, 'Pending', 'session created', now);
    this.advance(now);
    return record;
  }

  /** A desktop app: runs beside its desktop until deleted with it or on its own. */
  attachApp(desktop: SessionRecord, plan: CreatePlan, now: number): SessionRecord {
    let appid: string;
    do appid = randomId(this.random, 3);
    while (this.records.has(`${desktop.id}/${appid}`));
    const record = { ...this.build(desktop.id, plan), appid };
    this.records.set(`${desktop.id}/${appid}`, record);
    this.advance(now);
    return record;
  }

  /** A session (not an app) of this owner. */
  get(id: string, owner: string): SessionRecord | undefined {
    const record = this.records.get(id);
    return record?.owner === owner ? record : undefined;
  }

  getApp(id: string, appid: string, owner: string): SessionRecord | undefined {
    const record = this.records.get(`${id}/${appid}`);
    return record?.owner === owner ? record : undefined;
  }

  /** Sessions and apps in creation order; one owner's when given. */
  all(owner?: string): SessionRecord[] {
    const all = [...this.records.values()];
    return owner === undefined ? all : all.filter((r) => r.owner === owner);
  }

  /** DELETE: Terminating now, gone after `terminatingMs`; a desktop takes its apps along. */
  remove(record: SessionRecord, now: number): void {
    const targets = record.appid
      ? [record]
      : this.all(record.owner).filter(
          (r) => r.id === record.id && (r === record || r.type === 'desktop-app'),
        );
    for (const target of targets) {
      if (target.status === 'Terminating') continue;
      target.status = 'Terminating';
      target.deletedAt = now;
      if (target.startedAt !== undefined)
        target.events.push(event('Normal', 'Killing', `Stopping container ${containerName(target)}`, now));
      this.notify(target, 'Terminating', 'deleted by its owner', now);
    }
  }

  /**
   * Renew as Skaha does it: an active session whose remaining time is under the configured
   * lifetime gets `elapsed + lifetime` as its deadline. False when there is no active job.
   */
  renew(record: SessionRecord, now: number): boolean {
    const targets = this.all(record.owner).filter((r) => r.id === record.id && this.active(r));
    for (const target of targets) {
      const elapsedSeconds = (now - target.startedAt!) / 1000;
      if (target.deadlineSeconds - elapsedSeconds < this.settings.expirySeconds)
        target.deadlineSeconds = Math.ceil(elapsedSeconds + this.settings.expirySeconds);
    }
    return targets.length > 0;
  }

  /** The Job is active: admitted and not yet ended or being deleted. */
  private active(record: SessionRecord): boolean {
    return record.startedAt !== undefined && record.endedAt === undefined && record.status !== 'Terminating';
  }

  /** What admitted, unfinished sessions hold; a terminating pod holds until it is gone. */
  used(): Capacity {
    const used: Capacity = { cores: 0, ramGB: 0, gpus: 0 };
    for (const record of this.records.values()) {
      if (record.startedAt === undefined || record.endedAt !== undefined) continue;
      used.cores += record.request.cores;
      used.ramGB += record.request.ramGB;
      used.gpus += record.gpus;
    }
    return used;
  }

  /** Applies every transition due by `now`, in time order, then admits what now fits. */
  advance(now: number): void {
    for (let changed = true; changed;) {
      changed = false;
      for (const [key, record] of this.records) changed = this.step(key, record, now) || changed;
      changed = this.admit(now) || changed;
    }
  }

  private step(key: string, record: SessionRecord, now: number): boolean {
    if (record.status === 'Terminating') {
      if (now < record.deletedAt! + this.settings.terminatingMs) return false;
      this.records.delete(key);
      this.notify(record, 'Deleted', 'session removed', record.deletedAt! + this.settings.terminatingMs);
      return true;
    }
    if (record.startedAt === undefined || record.endedAt !== undefined) return false;
    const deadlineAt = record.startedAt + record.deadlineSeconds * 1000;
    const timing = this.settings.timing[record.type];
    const next =
      record.status === 'Pending'
        ? record.startedAt + timing.startupMs
        : record.fate.runMs === null
          ? Infinity
          : record.runningAt! + record.fate.runMs;
    if (Math.min(next, deadlineAt) > now) return false;
    if (deadlineAt <= next) {
      record.events.push(event('Warning', 'DeadlineExceeded', DEADLINE_MESSAGE, deadlineAt));
      this.end(record, 'Failed', `session expired: ${DEADLINE_MESSAGE}`, deadlineAt);
    } else if (record.status === 'Pending') {
      record.status = 'Running';
      record.runningAt = next;
      const container = containerName(record);
      record.events.push(
        event('Normal', 'Pulled', `Successfully pulled image "${record.image}"`, next),
        event('Normal', 'Created', `Created container ${container}`, next),
        event('Normal', 'Started', `Started container ${container}`, next),
      );
      record.logs.push(...record.fate.logs);
      const share = 0.05 + this.random() * 0.5;
      record.usage = { cores: record.request.cores * share, ramGB: record.request.ramGB * share };
      this.notify(record, 'Running', 'container started', next);
    } else if (record.fate.outcome === 'Completed') {
      record.logs.push('command finished with exit code 0');
      this.end(record, 'Completed', 'command finished with exit code 0', next);
    } else {
      record.events.push(event('Warning', 'BackOff', record.fate.message, next));
      record.logs.push(record.fate.message);
      this.end(record, 'Failed', record.fate.message, next);
    }
    return true;
  }

  private end(record: SessionRecord, status: 'Completed' | 'Failed', message: string, at: number): void {
    record.status = status;
    record.endedAt = at;
    delete record.usage;
    this.notify(record, status, message, at);
  }

  /** Strict FIFO, as a Kueue queue: a large session at the head holds back later small ones. */
  private admit(now: number): boolean {
    const used = this.used();
    const { cluster } = this.settings;
    let admitted = false;
    for (const record of this.records.values()) {
      if (record.startedAt !== undefined || record.status !== 'Pending') continue;
      const fits =
        used.cores + record.request.cores <= cluster.cores &&
        used.ramGB + record.request.ramGB <= cluster.ramGB &&
        used.gpus + record.gpus <= cluster.gpus;
      if (!fits) break;
      record.startedAt = now;
      used.cores += record.request.cores;
      used.ramGB += record.request.ramGB;
      used.gpus += record.gpus;
      record.events.push(
        event(
          'Normal',
          'Scheduled',
          `Successfully assigned skaha-workload/${podName(record)} to emulated-node-1`,
          now,
        ),
        event('Normal', 'Pulling', `Pulling image "${record.image}"`, now),
      );
      admitted = true;
    }
    return admitted;
  }

  private build(id: string, plan: CreatePlan): SessionRecord {
    const { context, flexRequests, imageRules, timing } = this.settings;
    const flex = flexRequests[plan.type] ?? {
      cores: context.cores.defaultRequest,
      ramGB: context.memoryGB.defaultRequest,
    };
    const rule = imageRules.find((r) =>
      r.image.endsWith('*') ? plan.image.startsWith(r.image.slice(0, -1)) : plan.image === r.image,
    );
    // Drawn for every session, so that rules do not shift the pattern for the others.
    const failsByChance = this.fateRandom() < this.settings.failureRate;
    const outcome = rule?.outcome ?? (failsByChance ? 'Failed' : 'Completed');
    let runMs = rule?.runMs !== undefined ? rule.runMs : timing[plan.type].runMs;
    if (outcome === 'Failed' && runMs === null) runMs = this.settings.failAfterMs;
    const command = [plan.cmd ?? '<image entrypoint>', ...plan.args].join(' ');
    const env = Object.keys(plan.env);
    return {
      id,
      owner: plan.owner,
      name: plan.name,
      image: plan.image,
      type: plan.type,
      fixed: plan.ramGB !== undefined,
      request: { cores: plan.cores ?? flex.cores, ramGB: plan.ramGB ?? flex.ramGB },
      gpus: plan.gpus,
      ...(plan.cmd === undefined ? {} : { cmd: plan.cmd }),
      args: plan.args,
      env: plan.env,
      deadlineSeconds: this.settings.expirySeconds,
      status: 'Pending',
      fate: {
        runMs,
        outcome,
        message: rule?.message ?? this.settings.failureMessage,
        logs: rule?.logs ?? [
          `starting ${plan.type} session ${plan.name}: ${command}` +
            (env.length ? ` (env: ${env.join(', ')})` : ''),
        ],
      },
      events: [],
      logs: [],
      notified: { sequence: 0 },
    };
  }

  private notify(record: SessionRecord, status: StatusChange['status'], message: string, at: number): void {
    this.onChange({ record, status, message, at });
  }
}

function event(type: PodEvent['type'], reason: string, message: string, at: number): PodEvent {
  return { type, reason, message, at };
}

function podName(record: SessionRecord): string {
  return `skaha-${record.type}-${record.owner}-${record.appid ?? record.id}-emul`;
}

function containerName(record: SessionRecord): string {
  return record.appid ? `${record.id}-${record.appid}` : record.id;
}
