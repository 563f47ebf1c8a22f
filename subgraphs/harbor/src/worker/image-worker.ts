/**
 * The image worker's behaviour: broker commands for a DockerContainer executable (prepare,
 * release, cancel) and Harbor's webhooks, turned into component callbacks.
 *
 * prepare finds the image locally or copies it; the copy is done when Harbor's webhook says so
 * (REPLICATION for a replication execution, PUSH/PULL_ARTIFACT for a proxy-cache pull), then
 * the local artifact's digest is checked once more before AVAILABLE. Work on one component runs
 * in order (a lane), so a cancel waits for the lookup in flight and then sees its copy.
 */
import type { Logger } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';
import type { HarborApi, WebhookPayload } from '../harbor/index.ts';
import {
  CommandInbox,
  currentTraceparent,
  inStoredTrace,
  type CallbackOutbox,
  type CallbackFields,
} from '@srcnet/service-kit';
import type { ImageCopier, RemoteLookup } from '../images/copier.ts';
import type { CopyEstimator } from '../images/estimate.ts';
import type { ImageLocator, ImageSpec, Track } from '../images/locator.ts';
import { splitRepository } from '../images/locator.ts';
import { parseImageReference } from '../registry/index.ts';
import type { CopyState, Db, ImageRow, ImagesTable } from '../store/store.ts';

/** Webhooks that came before the execution they report was recorded, kept this long. */
const EARLY_EVENT_MS = 5 * 60_000;

export interface ImageWorkerDeps {
  db: Db;
  harbor: HarborApi;
  locator: ImageLocator;
  copier: ImageCopier;
  estimator: CopyEstimator;
  outbox: CallbackOutbox;
  track: Track;
  log: Logger;
  /** Called when a copy ends, so that cached lookups are not served stale. */
  afterCopy: () => void;
}

export function imageSpecOf(step: Ivoa.ScheduledExecutionSession): ImageSpec {
  const image = (step.executable as Ivoa.DockerContainer | undefined)?.image;
  return { locations: image?.locations ?? [], digest: image?.digest };
}

type Outcome = { ok: true } | { ok: false; message: string };

export class ImageWorker {
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly earlyOutcomes = new Map<number, { outcome: Outcome; at: number }>();
  /** The tail of the chain that serialises copy starts. */
  private copyStarts: Promise<void> = Promise.resolve();

  private readonly inbox: CommandInbox;

  constructor(private readonly deps: ImageWorkerDeps) {
    this.inbox = new CommandInbox(deps.db, (command) => this.run(command), deps.log);
  }

  /**
   * Takes a command at most once (by commandId); the work runs in the background. Returns false
   * for a repeat.
   */
  accept(command: Ivoa.WorkerCommand): Promise<boolean> {
    return this.inbox.accept(command);
  }

  /** Resumes commands a restart interrupted. */
  async resume(): Promise<void> {
    await this.inbox.resume();
  }

  /** A command's work; a failure is reported to the broker (FAILED), so the command is done either way. */
  private run(command: Ivoa.WorkerCommand): Promise<void> {
    return this.inLane(command.component.uuid, async () => {
      try {
        if (command.action === 'prepare') await this.prepare(command);
        else if (command.action === 'release') await this.release(command);
        else await this.cancel(command);
      } catch (error) {
        this.deps.log.error({ err: error, commandId: command.commandId }, 'command failed');
        await this.fail(command.component.uuid, `image worker error: ${messageOf(error)}`, command);
      }
    });
  }

  private inLane(key: string, work: () => Promise<void>): Promise<void> {
    const next = (this.lanes.get(key) ?? Promise.resolve()).then(work).catch((error: unknown) => {
      this.deps.log.error({ err: error, key }, 'lane work failed');
    });
    this.lanes.set(key, next);
    void next.then(() => {
      if (this.lanes.get(key) === next) this.lanes.delete(key);
    });
    return next;
  }

  /** Waits until every lane is idle (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.lanes.size > 0) await Promise.all([...this.lanes.values()]);
  }

  private async row(uuid: string): Promise<ImageRow | undefined> {
    return this.deps.db
      .selectFrom('images')
      .selectAll()
      .where('component_uuid', '=', uuid)
      .executeTakeFirst();
  }

  private async update(uuid: string, fields: Partial<ImagesTable>): Promise<void> {
    await this.deps.db
      .updateTable('images')
      .set({ ...fields, updated_at: new Date().toISOString() })
      .where('component_uuid', '=', uuid)
      .execute();
  }

  private async report(
    row: Pick<ImageRow, 'callback_url' | 'step_id' | 'component_uuid'>,
    fields: Omit<CallbackFields, 'stepId' | 'componentUuid'>,
  ) {
    await this.deps.outbox.enqueue(row.callback_url, {
      stepId: row.step_id,
      componentUuid: row.component_uuid,
      ...fields,
    });
  }

  private async prepare(command: Ivoa.WorkerCommand): Promise<void> {
    const uuid = command.component.uuid;
    const existing = await this.row(uuid);
    // A resumed prepare whose copy was already started waits for Harbor, unless it finished meanwhile.
    if (existing && existing.copy_state !== 'CHECKING') {
      if (existing.copy_state === 'COPYING') await this.recheck(existing);
      return;
    }
    const spec = imageSpecOf(command.step);
    const now = new Date().toISOString();
    if (!existing)
      await this.deps.db
        .insertInto('images')
        .values({
          component_uuid: uuid,
          step_id: command.stepId,
          owner: command.owner,
          callback_url: command.callbackUrl,
          reference: spec.locations[0] ?? '',
          expected_digest: spec.digest ?? null,
          digest: null,
          size_bytes: null,
          available_locally: 0,
          local_reference: null,
          local_repository: null,
          copy_state: 'CHECKING',
          mode: null,
          execution_id: null,
          bytes_done: null,
          estimated_copy_seconds: null,
          message: null,
          phase: 'PREPARING',
          copy_started_at: null,
          updated_at: now,
          traceparent: currentTraceparent(),
        })
        .execute();
    const startedAt = Date.now();
    const lookup = await this.deps.locator.locate(spec);
    if (lookup.kind === 'unavailable') {
      await this.update(uuid, { reference: lookup.reference || (spec.locations[0] ?? '') });
      await this.fail(uuid, lookup.message);
      return;
    }
    const base = {
      reference: lookup.location,
      digest: lookup.digest,
      size_bytes: lookup.sizeBytes ?? null,
    };
    if (lookup.kind === 'local') {
      await this.update(uuid, {
        ...base,
        available_locally: 1,
        local_reference: lookup.localReference,
        local_repository: lookup.localRepository,
        copy_state: 'NOT_NEEDED',
        estimated_copy_seconds: 0,
        message: `already in the local Harbor as ${lookup.localReference}`,
        phase: 'AVAILABLE',
      });
      const observation = {
        registry: lookup.registry,
        bytes: lookup.sizeBytes ?? 0,
        local: true,
        durationSeconds: (Date.now() - startedAt) / 1000,
        outcome: 'ok' as const,
        startedAt: new Date(startedAt).toISOString(),
      };
      await this.deps.estimator.record(observation);
      await this.report((await this.row(uuid))!, {
        phase: 'AVAILABLE',
        message: `image ${lookup.location} is in the local Harbor as ${lookup.localReference}`,
        observation: toObservation(observation),
      });
      return;
    }
    await this.startCopy(uuid, lookup, base);
  }

  private async startCopy(
    uuid: string,
    lookup: RemoteLookup,
    base: Pick<ImagesTable, 'reference' | 'digest' | 'size_bytes'>,
  ): Promise<void> {
    const estimate = await this.deps.estimator.seconds({
      local: false,
      sizeBytes: lookup.sizeBytes,
      registry: lookup.registry,
    });
    const localReference = this.deps.locator.localReference(lookup.target.repository, lookup.digest);
    // One copy start at a time: steps that need the same image at once share one copy.
    const previous = this.copyStarts;
    let release!: () => void;
    this.copyStarts = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      await this.claimCopy(uuid, lookup, base, estimate, localReference);
    } finally {
      release();
    }
    const row = (await this.row(uuid))!;
    await this.report(row, {
      phase: 'PREPARING',
      message: row.message!,
      progress: {
        bytesDone: 0,
        ...(lookup.sizeBytes !== undefined ? { bytesTotal: lookup.sizeBytes } : {}),
        estimatedSecondsLeft: estimate,
      },
    });
    if (row.execution_id !== null) {
      const early = this.earlyOutcomes.get(row.execution_id);
      if (early) await this.finish(row, early.outcome);
    }
  }

  private async claimCopy(
    uuid: string,
    lookup: RemoteLookup,
    base: Pick<ImagesTable, 'reference' | 'digest' | 'size_bytes'>,
    estimate: number,
    localReference: string,
  ): Promise<void> {
    // Another step copying the same image: wait for that copy rather than start a second one.
    const shared = await this.deps.db
      .selectFrom('images')
      .selectAll()
      .where('copy_state', '=', 'COPYING')
      .where('local_reference', '=', localReference)
      .where('component_uuid', '!=', uuid)
      .executeTakeFirst();
    const started = shared?.mode
      ? { method: shared.mode, ...(shared.execution_id !== null ? { executionId: shared.execution_id } : {}) }
      : await this.deps.copier.start(lookup);
    const copyStartedAt = shared?.copy_started_at ?? new Date().toISOString();
    await this.update(uuid, {
      ...base,
      available_locally: 0,
      local_reference: localReference,
      local_repository: lookup.target.repository,
      copy_state: 'COPYING',
      mode: started.method,
      execution_id: started.executionId ?? null,
      bytes_done: 0,
      estimated_copy_seconds: estimate,
      message: `copying ${lookup.location} into the local Harbor by ${started.method === 'replication' ? `replication (execution ${started.executionId})` : 'a proxy-cache pull'}`,
      copy_started_at: copyStartedAt,
    });
  }

  /** After a restart: a copy that finished while the worker was down is found by its artifact. */
  private async recheck(row: ImageRow): Promise<void> {
    if (!row.local_repository || !row.digest) return;
    const { project, name } = splitRepository(row.local_repository);
    const artifact = await this.deps.track('harbor.getArtifact', () =>
      this.deps.harbor.getArtifact(project, name, row.digest!),
    );
    if (artifact) await this.finish(row, { ok: true });
  }

  private async release(command: Ivoa.WorkerCommand): Promise<void> {
    const uuid = command.component.uuid;
    const row = await this.row(uuid);
    if (row) await this.update(uuid, { phase: 'COMPLETED' });
    // The local copy stays: it is a cache that later steps use.
    await this.report(row ?? refOf(command), {
      phase: 'COMPLETED',
      message: 'image released (the local copy is kept)',
    });
  }

  private async cancel(command: Ivoa.WorkerCommand): Promise<void> {
    const uuid = command.component.uuid;
    const row = await this.row(uuid);
    if (row?.copy_state === 'COPYING' && row.execution_id !== null) {
      const others = await this.deps.db
        .selectFrom('images')
        .select('component_uuid')
        .where('execution_id', '=', row.execution_id)
        .where('copy_state', '=', 'COPYING')
        .where('component_uuid', '!=', uuid)
        .execute();
      if (others.length === 0) await this.deps.copier.stop(row.execution_id);
    }
    if (row)
      await this.update(uuid, {
        phase: 'CANCELLED',
        ...(isActive(row.copy_state) ? { copy_state: 'CANCELLED' as const, message: 'cancelled' } : {}),
      });
    await this.report(row ?? refOf(command), { phase: 'CANCELLED', message: 'image preparation cancelled' });
  }

  private async fail(uuid: string, message: string, command?: Ivoa.WorkerCommand): Promise<void> {
    const row = await this.row(uuid);
    if (row) {
      if (row.phase === 'FAILED' || row.phase === 'CANCELLED') return;
      await this.update(uuid, { copy_state: 'FAILED', phase: 'FAILED', message });
    }
    const target = row ?? (command ? refOf(command) : undefined);
    if (target) await this.report(target, { phase: 'FAILED', message });
  }

  /** A Harbor webhook delivery, already authenticated and parsed. */
  async onWebhook(payload: WebhookPayload): Promise<void> {
    if (payload.type === 'REPLICATION') {
      const replication = payload.event_data!.replication!;
      const status = replication.job_status;
      if (status !== 'Success' && status !== 'Error' && status !== 'Stopped') return;
      const outcome: Outcome =
        status === 'Success'
          ? { ok: true }
          : {
              ok: false,
              message: `Harbor replication execution ${replication.execution_id} ended ${status}${
                replication.failed_artifact?.[0]?.fail_reason
                  ? `: ${replication.failed_artifact[0].fail_reason}`
                  : ''
              }`,
            };
      await this.onExecutionDone(replication.execution_id!, outcome);
      return;
    }
    if (payload.type === 'PUSH_ARTIFACT' || payload.type === 'PULL_ARTIFACT') {
      const repository = payload.event_data?.repository?.repo_full_name;
      const digests = (payload.event_data?.resources ?? []).flatMap((r) => (r.digest ? [r.digest] : []));
      if (!repository || digests.length === 0) return;
      await this.onArtifactArrived(repository, digests, false);
    }
  }

  /** A proxy-cache copy's artifact is in the local Harbor (a webhook, or the reconciling read). */
  private async onArtifactArrived(repository: string, digests: string[], wait: boolean): Promise<void> {
    const rows = await this.deps.db
      .selectFrom('images')
      .selectAll()
      .where('copy_state', '=', 'COPYING')
      .where('mode', '=', 'proxy-cache')
      .where('local_repository', '=', repository)
      .execute();
    const finishing = rows
      .filter((row) => row.digest && digests.includes(row.digest))
      .map((row) =>
        this.inLane(row.component_uuid, () => this.finishIfCopying(row.component_uuid, { ok: true })),
      );
    if (wait) await Promise.all(finishing);
  }

  /**
   * Proxy-cache copies in flight, each checked by one artifact read (one per image, shared by the
   * steps that wait for it): Harbor v2.0 has no artifact listing across repositories.
   */
  async recheckProxyCopies(): Promise<void> {
    const copies = await this.deps.db
      .selectFrom('images')
      .select(['local_repository', 'digest'])
      .distinct()
      .where('copy_state', '=', 'COPYING')
      .where('mode', '=', 'proxy-cache')
      .where('local_repository', 'is not', null)
      .where('digest', 'is not', null)
      .execute();
    for (const copy of copies) {
      const { project, name } = splitRepository(copy.local_repository!);
      const artifact = await this.deps.track('harbor.getArtifact', () =>
        this.deps.harbor.getArtifact(project, name, copy.digest!),
      );
      if (artifact) await this.onArtifactArrived(copy.local_repository!, [copy.digest!], true);
    }
  }

  /** Used by the webhook handler and by the batched execution watcher (webhooks off, or reconciling). */
  async onExecutionDone(executionId: number, outcome: Outcome): Promise<void> {
    const rows = await this.deps.db
      .selectFrom('images')
      .select('component_uuid')
      .where('execution_id', '=', executionId)
      .where('copy_state', '=', 'COPYING')
      .execute();
    if (rows.length === 0) {
      this.rememberEarly(executionId, outcome);
      return;
    }
    await Promise.all(
      rows.map((row) =>
        this.inLane(row.component_uuid, () => this.finishIfCopying(row.component_uuid, outcome)),
      ),
    );
  }

  /** Executions this worker waits for (for the batched watcher). */
  async executionsInFlight(): Promise<number[]> {
    const rows = await this.deps.db
      .selectFrom('images')
      .select('execution_id')
      .distinct()
      .where('copy_state', '=', 'COPYING')
      .where('execution_id', 'is not', null)
      .execute();
    return rows.map((row) => row.execution_id!);
  }

  private rememberEarly(executionId: number, outcome: Outcome): void {
    const now = Date.now();
    for (const [id, entry] of this.earlyOutcomes)
      if (now - entry.at > EARLY_EVENT_MS) this.earlyOutcomes.delete(id);
    this.earlyOutcomes.set(executionId, { outcome, at: now });
  }

  private async finishIfCopying(uuid: string, outcome: Outcome): Promise<void> {
    const row = await this.row(uuid);
    if (row?.copy_state === 'COPYING') await this.finish(row, outcome);
  }

  /**
   * Ends a copy: checks the local artifact's digest, reports AVAILABLE or FAILED, records history;
   * in the trace of the command that prepared the image, whether a webhook or the watcher told.
   */
  private finish(row: ImageRow, outcome: Outcome): Promise<void> {
    return inStoredTrace(
      'harbor',
      `harbor copy ${outcome.ok ? 'done' : 'failed'}`,
      row.traceparent,
      {
        attributes: {
          'srcnet.step_id': row.step_id,
          ...(row.execution_id !== null ? { 'harbor.execution_id': row.execution_id } : {}),
        },
      },
      () => this.finishCopy(row, outcome),
    );
  }

  private async finishCopy(row: ImageRow, outcome: Outcome): Promise<void> {
    const startedAt = row.copy_started_at ?? row.updated_at;
    const durationSeconds = Math.max(0, (Date.now() - Date.parse(startedAt)) / 1000);
    let result = outcome;
    if (result.ok) result = await this.verifyCopy(row);
    const registry = registryOf(row.reference);
    const observation = {
      registry,
      bytes: row.size_bytes ?? 0,
      local: false,
      durationSeconds,
      outcome: result.ok ? ('ok' as const) : ('failed' as const),
      startedAt,
    };
    if (row.size_bytes !== null) await this.deps.estimator.record(observation);
    this.deps.afterCopy();
    if (!result.ok) {
      await this.update(row.component_uuid, {
        copy_state: 'FAILED',
        phase: 'FAILED',
        message: result.message,
      });
      await this.report(row, {
        phase: 'FAILED',
        message: result.message,
        observation: toObservation(observation),
      });
      return;
    }
    await this.update(row.component_uuid, {
      copy_state: 'SUCCEEDED',
      phase: 'AVAILABLE',
      available_locally: 1,
      bytes_done: row.size_bytes,
      message: `copied into the local Harbor as ${row.local_reference}`,
    });
    await this.report(row, {
      phase: 'AVAILABLE',
      message: `image ${row.reference} copied into the local Harbor as ${row.local_reference}`,
      ...(row.size_bytes !== null
        ? { progress: { bytesDone: row.size_bytes, bytesTotal: row.size_bytes, estimatedSecondsLeft: 0 } }
        : {}),
      observation: toObservation(observation),
    });
  }

  private async verifyCopy(row: ImageRow): Promise<Outcome> {
    const { project, name } = splitRepository(row.local_repository!);
    const artifact = await this.deps.track('harbor.getArtifact', () =>
      this.deps.harbor.getArtifact(project, name, row.digest!),
    );
    if (artifact) return { ok: true };
    const tag = /:([\w][\w.-]*)$/.exec(row.reference.split('@')[0]!)?.[1];
    const byTag = tag
      ? await this.deps.track('harbor.getArtifact', () => this.deps.harbor.getArtifact(project, name, tag))
      : undefined;
    return {
      ok: false,
      message: byTag
        ? `digest mismatch: the copy of ${row.reference} in ${row.local_repository} has digest ${byTag.digest}, but the step requires ${row.digest}`
        : `Harbor reported the copy done, but ${row.local_repository}@${row.digest} is not in the local Harbor`,
    };
  }
}

const isActive = (state: CopyState) => state === 'CHECKING' || state === 'COPYING';

function refOf(command: Ivoa.WorkerCommand) {
  return {
    callback_url: command.callbackUrl,
    step_id: command.stepId,
    component_uuid: command.component.uuid,
  };
}

function registryOf(reference: string): string {
  try {
    return parseImageReference(reference).registry;
  } catch {
    return 'unknown';
  }
}

function toObservation(o: {
  registry: string;
  bytes: number;
  local: boolean;
  durationSeconds: number;
  outcome: 'ok' | 'failed';
  startedAt: string;
}): Ivoa.PreparationObservation {
  return {
    action: 'image-copy',
    // The generated type leaves params open-ended; these are ARCHITECTURE.md's image-copy params.
    params: {
      bytes: o.bytes,
      registry: o.registry,
      local: o.local,
    } as unknown as Ivoa.PreparationObservation['params'],
    startedAt: o.startedAt,
    durationSeconds: Math.round(o.durationSeconds * 1000) / 1000,
    outcome: o.outcome,
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
