/**
 * The worker's use cases: prepare, release and cancel a step's storage and data components, and
 * follow each data component's staging job from prepareData's notifications (or, where the
 * service cannot call back, from one batched list call per interval) to the broker.
 */
import type { Logger } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';
import {
  formatDid,
  stageSourceOf,
  StageRequestError,
  type DataResourceLike,
  type PrepareDataApi,
  type StageCallbackEvent,
  type StageFile,
  type StageJob,
  type StageState,
} from '../preparedata/index.ts';
import { currentTraceparent, inStoredTrace, type CallbackOutbox } from '@srcnet/service-kit';
import { dataWindow, lifetimeSeconds } from './lifetime.ts';
import {
  SETTLED,
  type ComponentRow,
  type ComponentsTable,
  type Db,
  type StagingState,
} from '../store/store.ts';

export interface StagerOptions {
  db: Db;
  api: PrepareDataApi;
  outbox: CallbackOutbox;
  log: Logger;
  storageArea: string;
  progressIntervalMs: number;
  /** Where prepareData notifies this worker; undefined when callbacks are off. */
  notification?: { url: string; secret: string };
}

/** What a notification or a listed job says about a job. */
interface JobUpdate {
  state: StageState;
  bytesDone: number;
  bytesTotal: number;
  message: string | null;
  expiresAt: string;
  /** Present when the update came with the job document (a list or status call). */
  files?: StageFile[];
}

const ACTIVE_PHASES = new Set(['PREPARING', 'AVAILABLE', 'RUNNING']);

export class Stager {
  /** Per component, the work in progress: commands and notifications of one component run in order. */
  private readonly lanes = new Map<string, Promise<void>>();
  private reconciling: Promise<number> | undefined;

  constructor(private readonly options: StagerOptions) {}

  /** Runs fn after everything already queued for this component. */
  private inLane<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(uuid) ?? Promise.resolve();
    const result = previous.then(fn);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.lanes.set(uuid, settled);
    void settled.then(() => {
      if (this.lanes.get(uuid) === settled) this.lanes.delete(uuid);
    });
    return result;
  }

  /** Waits for all work in progress (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.lanes.size) await Promise.all(this.lanes.values());
  }

  /** Does what one (new) command asks. */
  run(command: Ivoa.WorkerCommand): Promise<void> {
    return this.inLane(command.component.uuid, () =>
      command.action === 'prepare' ? this.prepare(command) : this.end(command, command.action),
    );
  }

  private async row(uuid: string): Promise<ComponentRow | undefined> {
    return this.options.db
      .selectFrom('components')
      .selectAll()
      .where('component_uuid', '=', uuid)
      .executeTakeFirst();
  }

  private async save(uuid: string, changes: Partial<ComponentsTable>): Promise<void> {
    await this.options.db
      .updateTable('components')
      .set({ ...changes, updated_at: new Date().toISOString() })
      .where('component_uuid', '=', uuid)
      .execute();
  }

  private report(
    row: Pick<ComponentRow, 'callback_url' | 'step_id' | 'component_uuid'>,
    phase: Ivoa.LifecyclePhase,
    extra: Partial<Pick<Ivoa.ComponentCallback, 'message' | 'progress' | 'observation'>> = {},
  ): Promise<void> {
    return this.options.outbox.enqueue(row.callback_url, {
      stepId: row.step_id,
      componentUuid: row.component_uuid,
      phase,
      ...extra,
    });
  }

  private async prepare(command: Ivoa.WorkerCommand): Promise<void> {
    const existing = await this.row(command.component.uuid);
    // A command resumed after a restart finds its row: the submit below is idempotent, the rest is done.
    if (existing && existing.state !== 'SUBMITTING') return;
    const role = command.component.role;
    if (role !== 'storage' && role !== 'data')
      throw new Error(`prepareData prepares storage and data, not ${role}`);
    const resource = (role === 'data' ? command.step.data : command.step.storage)?.find(
      (item) => item.meta?.uuid === command.component.uuid,
    );
    const now = new Date().toISOString();
    const base: ComponentsTable = {
      component_uuid: command.component.uuid,
      step_id: command.stepId,
      owner: command.owner,
      role,
      name: resource?.meta?.name ?? null,
      callback_url: command.callbackUrl,
      source: null,
      source_kind: null,
      source_site: null,
      storage_area: this.options.storageArea,
      job_id: null,
      state: role === 'storage' ? 'ALLOCATED' : 'SUBMITTING',
      phase: 'PREPARING',
      bytes_done: 0,
      bytes_total: null,
      rate: null,
      sample_at: null,
      sample_bytes: null,
      local_path: null,
      expires_at: null,
      message: null,
      window_end: 0,
      release_ms: 0,
      lifetime_seconds: null,
      event_sequence: -1,
      progress_sent_at: 0,
      started_at: now,
      updated_at: now,
      traceparent: currentTraceparent(),
    };
    const fail = async (message: string) => {
      await this.options.db
        .insertInto('components')
        .values({ ...base, state: 'FAILED', phase: 'FAILED', message })
        .onConflict((oc) =>
          oc.column('component_uuid').doUpdateSet({ state: 'FAILED', phase: 'FAILED', message }),
        )
        .execute();
      await this.report(base, 'FAILED', { message });
    };
    if (!resource) return fail(`the step has no ${role} resource ${command.component.uuid}`);
    try {
      const window = dataWindow(command.step, resource);
      base.window_end = window.windowEnd;
      base.release_ms = window.releaseMs;
    } catch (error) {
      return fail(`cannot size the lifetime of ${base.name ?? role}: ${(error as Error).message}`);
    }
    if (role === 'storage') {
      // The site's storage area exists already; this component only names which one the data goes to.
      await this.options.db
        .insertInto('components')
        .values(base)
        .onConflict((oc) => oc.column('component_uuid').doNothing())
        .execute();
      await this.report(base, 'AVAILABLE', { message: `storage area ${this.options.storageArea}` });
      return;
    }
    let source;
    try {
      source = stageSourceOf(resource as DataResourceLike);
    } catch (error) {
      if (error instanceof StageRequestError) return fail(error.message);
      throw error;
    }
    base.source = source.kind === 'did' ? formatDid(source.did) : source.url;
    base.source_kind = source.kind;
    base.bytes_total = source.bytesHint ?? null;
    base.source_site = source.kind === 'url' ? new URL(source.url).host : null;
    base.lifetime_seconds = lifetimeSeconds({ windowEnd: base.window_end, releaseMs: base.release_ms });
    if (!existing) await this.options.db.insertInto('components').values(base).execute();
    let jobId: string;
    try {
      ({ jobId } = await this.options.api.submit(
        {
          ...(source.kind === 'did' ? { dids: [source.did] } : { urls: [source.url] }),
          targetStorageArea: this.options.storageArea,
          lifetimeSeconds: base.lifetime_seconds,
          ...(this.options.notification ? { callback: this.options.notification } : {}),
        },
        // Derived from the component, so that a resumed command finds the job it made before.
        { idempotencyKey: `${command.stepId}:${command.component.uuid}` },
      ));
    } catch (error) {
      return fail(`prepareData did not accept staging of ${base.source}: ${(error as Error).message}`);
    }
    await this.save(base.component_uuid, { job_id: jobId, state: 'QUEUED' });
    await this.report(base, 'PREPARING', {
      progress: { bytesDone: 0, bytesTotal: base.bytes_total ?? 0 },
    });
    this.options.log.info({ stepId: command.stepId, jobId, source: base.source }, 'staging submitted');
  }

  private async end(command: Ivoa.WorkerCommand, action: 'release' | 'cancel'): Promise<void> {
    const done: Ivoa.LifecyclePhase = action === 'release' ? 'COMPLETED' : 'CANCELLED';
    const row = await this.row(command.component.uuid);
    const target = row ?? {
      callback_url: command.callbackUrl,
      step_id: command.stepId,
      component_uuid: command.component.uuid,
    };
    if (row?.phase === done) return;
    let message = action === 'release' ? 'released' : 'cancelled';
    if (row?.job_id && !SETTLED.includes(row.state)) {
      try {
        await this.options.api.release(row.job_id);
        message = `staged copy of ${row.source} released`;
      } catch (error) {
        // The lifetime still removes the data; the step must not wait for it.
        message = `release of job ${row.job_id} failed (${(error as Error).message}); its lifetime removes the data at ${row.expires_at ?? 'its end'}`;
        this.options.log.warn({ jobId: row.job_id, err: error }, 'release failed');
      }
    }
    if (row)
      await this.save(row.component_uuid, {
        state: row.role === 'storage' || !SETTLED.includes(row.state) ? 'RELEASED' : row.state,
        phase: done,
        local_path: null,
      });
    await this.report(target, done, { message });
  }

  /** A prepareData notification; false when the job is not (yet) known, so that the sender retries. */
  async notified(event: StageCallbackEvent): Promise<boolean> {
    const row = await this.options.db
      .selectFrom('components')
      .select('component_uuid')
      .where('job_id', '=', event.jobId)
      .executeTakeFirst();
    if (!row) return false;
    await this.inLane(row.component_uuid, async () => {
      const current = await this.row(row.component_uuid);
      // At least once, and possibly out of order after retries: apply only what is newer.
      if (!current || event.sequence <= current.event_sequence) return;
      // Recorded after applying: an event that failed half-way is applied again when resent.
      await this.apply(current, event);
      await this.save(current.component_uuid, { event_sequence: event.sequence });
    });
    return true;
  }

  /** Jobs the worker still follows: neither settled nor released by it. */
  private async followed(): Promise<ComponentRow[]> {
    return this.options.db
      .selectFrom('components')
      .selectAll()
      .where('job_id', 'is not', null)
      .where('state', 'not in', [...SETTLED])
      .execute();
  }

  /**
   * One list call for every followed job: the batched watcher's tick, the catch-up on start, and
   * (with notifications on) the reconciliation that catches a lost one. Never one status call per
   * job; a tick that comes while a list call is still out joins it instead of making another.
   */
  reconcile(): Promise<number> {
    this.reconciling ??= this.listAndApply().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async listAndApply(): Promise<number> {
    const rows = await this.followed();
    if (rows.length === 0) return 0;
    const listedAt = new Date().toISOString();
    const list = await this.options.api.listJobs(rows.map((row) => row.job_id!));
    const byJob = new Map(list.jobs.map((job) => [job.jobId, job]));
    await Promise.all(
      rows.map((row) =>
        this.inLane(row.component_uuid, async () => {
          const current = await this.row(row.component_uuid);
          if (!current || SETTLED.includes(current.state)) return;
          // A notification applied while the list call was out is newer than the listing.
          if (current.updated_at > listedAt) return;
          const job = byJob.get(row.job_id!);
          if (job) return this.apply(current, jobUpdate(job));
          await this.apply(current, {
            state: current.state === 'COMPLETED' ? 'EXPIRED' : 'FAILED',
            bytesDone: current.bytes_done,
            bytesTotal: current.bytes_total ?? 0,
            message: `prepareData no longer knows staging job ${row.job_id}`,
            expiresAt: current.expires_at ?? new Date().toISOString(),
          });
        }),
      ),
    );
    return rows.length;
  }

  /**
   * Moves one component on from what prepareData says about its job. A change is part of the trace
   * of the command that prepared the component, whether a notification or a listing reported it.
   */
  private async apply(row: ComponentRow, update: JobUpdate): Promise<void> {
    if (SETTLED.includes(row.state) || row.phase === 'COMPLETED' || row.phase === 'CANCELLED') return;
    if (update.state === row.state && update.bytesDone === row.bytes_done) return this.move(row, update);
    return inStoredTrace(
      'preparedata',
      `preparedata job ${update.state}`,
      row.traceparent,
      { attributes: { 'preparedata.job_id': row.job_id ?? '', 'srcnet.step_id': row.step_id } },
      () => this.move(row, update),
    );
  }

  private async move(row: ComponentRow, update: JobUpdate): Promise<void> {
    const now = Date.now();
    const changes: Partial<ComponentsTable> = {
      state: update.state as StagingState,
      bytes_done: update.bytesDone,
      bytes_total: update.bytesTotal,
      expires_at: update.expiresAt,
      message: update.message,
      ...sample(row, update.bytesDone, now),
    };
    const file = update.files?.[0];
    if (file) {
      changes.local_path = file.localPath;
      changes.source_site = file.sourceSite ?? row.source_site;
    }
    const preparing = row.phase === 'PREPARING';
    if (update.state === 'COMPLETED' && preparing) {
      // Notifications carry no file list: one read of the finished job gives its local path.
      const details = file ?? (await this.options.api.getJob(row.job_id!)).files[0];
      changes.local_path = details?.localPath ?? null;
      changes.source_site = details?.sourceSite ?? row.source_site;
      changes.phase = 'AVAILABLE';
      await this.save(row.component_uuid, changes);
      await this.report(row, 'AVAILABLE', {
        message: `${row.source} staged to ${changes.local_path ?? row.storage_area}`,
        progress: { bytesDone: update.bytesTotal, bytesTotal: update.bytesTotal, estimatedSecondsLeft: 0 },
        observation: observation(row, update.bytesTotal, changes.source_site ?? null, details, 'ok', now),
      });
      return;
    }
    if ((update.state === 'FAILED' || update.state === 'EXPIRED') && ACTIVE_PHASES.has(row.phase)) {
      const message =
        update.state === 'FAILED'
          ? (update.message ?? `staging of ${row.source} failed`)
          : `the staged copy of ${row.source} expired at ${update.expiresAt}`;
      changes.phase = 'FAILED';
      changes.message = message;
      changes.local_path = null;
      await this.save(row.component_uuid, changes);
      await this.report(row, 'FAILED', {
        message,
        ...(preparing
          ? { observation: observation(row, update.bytesDone, row.source_site, file, 'failed', now) }
          : {}),
      });
      return;
    }
    if (preparing && (update.state === 'QUEUED' || update.state === 'STAGING')) {
      const due = now - row.progress_sent_at >= this.options.progressIntervalMs;
      if (due && update.bytesDone !== row.bytes_done) {
        changes.progress_sent_at = now;
        await this.save(row.component_uuid, changes);
        const rate = changes.rate ?? row.rate;
        await this.report(row, 'PREPARING', {
          progress: {
            bytesDone: update.bytesDone,
            bytesTotal: update.bytesTotal,
            ...(rate ? { estimatedSecondsLeft: secondsLeft(update.bytesDone, update.bytesTotal, rate) } : {}),
          },
        });
        return;
      }
    }
    await this.save(row.component_uuid, changes);
  }

  /**
   * The step's window grew by `seconds`: every staged copy of it now lives until the new window
   * end plus the release time. Returns the step's components as they are afterwards.
   */
  async extend(stepId: string, seconds: number): Promise<ComponentRow[]> {
    const rows = await this.options.db
      .selectFrom('components')
      .selectAll()
      .where('step_id', '=', stepId)
      .execute();
    await Promise.all(
      rows.map((row) =>
        this.inLane(row.component_uuid, async () => {
          const current = (await this.row(row.component_uuid))!;
          const window = { windowEnd: current.window_end + seconds * 1000, releaseMs: current.release_ms };
          const changes: Partial<ComponentsTable> = { window_end: window.windowEnd };
          if (current.job_id && !SETTLED.includes(current.state)) {
            const lifetime = lifetimeSeconds(window);
            const job = await this.options.api.extendLifetime(current.job_id, lifetime);
            changes.lifetime_seconds = lifetime;
            changes.expires_at = job.expiresAt;
          }
          await this.save(current.component_uuid, changes);
        }),
      ),
    );
    return this.options.db
      .selectFrom('components')
      .selectAll()
      .where('step_id', '=', stepId)
      .orderBy('name')
      .execute();
  }
}

function jobUpdate(job: StageJob): JobUpdate {
  return {
    state: job.state,
    bytesDone: job.bytesDone,
    bytesTotal: job.bytesTotal,
    message: job.message,
    expiresAt: job.expiresAt,
    files: job.files,
  };
}

/** A smoothed transfer rate from the last sample to this one. */
function sample(row: ComponentRow, bytes: number, now: number): Partial<ComponentsTable> {
  if (row.sample_at === null || row.sample_bytes === null || bytes < row.sample_bytes)
    return { sample_at: now, sample_bytes: bytes };
  const seconds = (now - row.sample_at) / 1000;
  if (seconds <= 0 || bytes === row.sample_bytes) return {};
  const instant = (bytes - row.sample_bytes) / seconds;
  return {
    sample_at: now,
    sample_bytes: bytes,
    rate: row.rate === null ? instant : 0.5 * row.rate + 0.5 * instant,
  };
}

export function secondsLeft(done: number, total: number, rate: number): number {
  return Math.max(0, Math.round(((total - done) / rate) * 10) / 10);
}

function observation(
  row: ComponentRow,
  bytes: number,
  sourceSite: string | null,
  file: StageFile | undefined,
  outcome: 'ok' | 'failed',
  now: number,
): Ivoa.ComponentCallback['observation'] {
  const startedAt = file?.startedAt ?? row.started_at ?? new Date(now).toISOString();
  const endedAt = file?.completedAt ? Date.parse(file.completedAt) : now;
  const params = {
    bytes,
    sourceSite: sourceSite ?? 'unknown',
    targetStorage: row.storage_area,
    inFlight: file?.inFlightAtStart ?? 0,
  };
  return {
    action: 'data-staging',
    // The generated type reads the schema's open `params: {type: object}` as an empty record.
    params: params as unknown as Record<string, never>,
    startedAt,
    durationSeconds: Math.max(0, (endedAt - Date.parse(startedAt)) / 1000),
    outcome,
  };
}
