/**
 * The worker's core: it turns broker commands into Skaha sessions and Skaha status changes
 * (from callbacks or the batched watcher, both through `observe`) into component callbacks.
 * Everything about one component runs in order on its own lane, so a callback that arrives
 * while its session is still being created waits for the create instead of racing it.
 */
import type { Logger } from 'pino';
import { schemaNameForKind, type Ivoa } from '@srcnet/execution-step-schema';
import {
  currentTraceparent,
  inStoredTrace,
  type CallbackOutbox,
  type CallbackFields,
} from '@srcnet/service-kit';
import { ResourceMappingError, skahaResourcesFor, type StepCompute } from '../resources/mapping.ts';
import type { CallbackTarget, ResourceContext, Session, SessionStatus, SkahaApi } from '../skaha/index.ts';
import { parseEventsTable, SkahaError } from '../skaha/index.ts';
import type { Db, Intent, SessionRow } from '../store/store.ts';
import {
  createRequest,
  executableIsImmediate,
  launchPlan,
  LaunchError,
  sessionName,
  type LaunchPlan,
} from './launch.ts';

/** A status as the worker tracks it: Skaha's, or `Deleted` once the session is gone. */
export type TrackedStatus = SessionStatus | 'Deleted';

/** One sighting of a session, from a callback or a listing. */
export interface Sighting {
  status: TrackedStatus;
  session?: Session;
  message?: string;
  /** When the change happened (ms). */
  at: number;
}

export interface TrackerOptions {
  api: SkahaApi;
  db: Db;
  outbox: CallbackOutbox;
  log: Logger;
  notebookImage: string;
  registryAuth: { username: string; secret: string } | undefined;
  /** The image a DockerContainer step runs: the local Harbor copy, or its first location. */
  dockerImage(stepId: string, docker: Ivoa.DockerContainer): Promise<string | undefined>;
  /** Called when the set of sessions to watch changed (a create or a delete). */
  onChange(): void;
}

const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const CONTEXT_TTL_MS = 10 * 60_000;

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class SessionTracker {
  /** Where Skaha sends status callbacks; unset when the deployment has no callback extension. */
  callbackTarget: CallbackTarget | undefined;
  private readonly lanes = new Map<string, Promise<unknown>>();
  private context: { value: Promise<ResourceContext>; at: number } | undefined;

  constructor(private readonly options: TrackerOptions) {}

  /** Runs `fn` after everything queued for the component before it. */
  private serial<T>(component: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(component) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => {},
      () => {},
    );
    this.lanes.set(component, settled);
    void settled.then(() => {
      if (this.lanes.get(component) === settled) this.lanes.delete(component);
    });
    return run;
  }

  /** Skaha's `/context`, read once and then every ten minutes, never once per step. */
  resourceContext(): Promise<ResourceContext> {
    if (!this.context || Date.now() - this.context.at > CONTEXT_TTL_MS) {
      // One request serves every launch waiting for it; a failed one is not kept.
      const value = this.options.api.getContext();
      const entry = { value, at: Date.now() };
      this.context = entry;
      value.catch(() => {
        if (this.context === entry) this.context = undefined;
      });
    }
    return this.context.value;
  }

  /** Carries out a command (already deduplicated by its id). */
  handle(command: Ivoa.WorkerCommand): Promise<void> {
    return this.serial(command.component.uuid, async () => {
      const { role, kind } = command.component;
      if (role === 'compute') return this.compute(command);
      if (role === 'executable') {
        // Nothing to prepare: Skaha pulls the image itself when the compute's session starts.
        const phase = { prepare: 'AVAILABLE', release: 'COMPLETED', cancel: 'CANCELLED' } as const;
        if (!executableIsImmediate(kind) && schemaNameForKind(kind) !== 'DockerContainer')
          return this.report(command, {
            phase: 'FAILED',
            message: `executable kind ${kind} cannot run on Skaha`,
          });
        return this.report(command, { phase: phase[command.action] });
      }
      await this.report(command, {
        phase: command.action === 'cancel' ? 'CANCELLED' : 'FAILED',
        message: `the Skaha worker does not prepare ${role} components`,
      });
    });
  }

  private async compute(command: Ivoa.WorkerCommand): Promise<void> {
    const row = await this.row(command.component.uuid);
    if (command.action === 'prepare') {
      if (!row) return this.launch(command);
      // A prepare resumed after a restart: the create may have happened without its answer.
      if (row.session_id === null) {
        const found = (await this.options.api.listSessions()).find(
          (s) => s.name === row.name && s.status !== 'Terminating',
        );
        if (found) return this.created(row, found.id);
        await this.options.db
          .deleteFrom('sessions')
          .where('component_uuid', '=', row.component_uuid)
          .execute();
        return this.launch(command);
      }
      return;
    }
    const intent: Intent = command.action;
    const done = intent === 'release' ? 'COMPLETED' : 'CANCELLED';
    if (!row) return this.report(command, { phase: done });
    // The session's end answers this command: what Skaha reports from now on joins its trace.
    await this.update(row, { intent, traceparent: currentTraceparent() ?? row.traceparent });
    if (row.session_id === null || row.status === 'Deleted') {
      if (!FINAL.has(row.phase)) await this.send(row, { phase: done });
      return;
    }
    await this.remove({ ...row, intent });
  }

  private async launch(command: Ivoa.WorkerCommand): Promise<void> {
    const step = command.step;
    let plan: LaunchPlan;
    let resources: { cores?: number; ram?: number };
    let guaranteed: { cores: number; ram: number; fixed: boolean };
    try {
      const docker =
        schemaNameForKind(step.executable?.kind ?? '') === 'DockerContainer'
          ? (step.executable as Ivoa.DockerContainer)
          : undefined;
      const dockerImage = docker ? await this.options.dockerImage(command.stepId, docker) : undefined;
      plan = launchPlan(step.executable, {
        notebookImage: this.options.notebookImage,
        ...(dockerImage ? { dockerImage } : {}),
      });
      const mapped = skahaResourcesFor(step.compute as StepCompute | undefined, await this.resourceContext());
      resources = mapped.fixed ? { cores: mapped.cores, ram: mapped.ram } : {};
      guaranteed = mapped.fixed
        ? { cores: mapped.cores, ram: mapped.ram, fixed: true }
        : { ...mapped.request, fixed: false };
    } catch (error) {
      if (!(
        error instanceof LaunchError ||
        error instanceof ResourceMappingError ||
        error instanceof SkahaError
      ))
        throw error;
      return this.report(command, {
        phase: 'FAILED',
        message: `cannot launch a Skaha session: ${error.message}`,
      });
    }
    const starting = await this.options.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('intent', '=', 'run')
      .where((eb) => eb.or([eb('status', 'is', null), eb('status', '=', 'Pending')]))
      .executeTakeFirst();
    const now = Date.now();
    const row: SessionRow = {
      component_uuid: command.component.uuid,
      step_id: command.stepId,
      owner: command.owner,
      callback_url: command.callbackUrl,
      name: sessionName(command.stepId),
      type: plan.type,
      image: plan.image,
      cores: guaranteed.cores,
      memory_gib: guaranteed.ram,
      fixed: guaranteed.fixed ? 1 : 0,
      in_flight: Number(starting?.n ?? 0),
      session_id: null,
      intent: 'run',
      status: null,
      skaha_sequence: 0,
      phase: 'PREPARING',
      snapshot: null,
      message: null,
      create_requested_at: now,
      created_at: null,
      delete_requested_at: null,
      updated_at: now,
      traceparent: currentTraceparent(),
    };
    await this.options.db.insertInto('sessions').values(row).execute();
    try {
      const created = await this.options.api.createSession(
        createRequest(plan, row.name, resources, {
          ...(this.options.registryAuth ? { registryAuth: this.options.registryAuth } : {}),
          ...(this.callbackTarget ? { callback: this.callbackTarget } : {}),
        }),
      );
      await this.created(row, created.id);
    } catch (error) {
      if (!(error instanceof SkahaError || error instanceof TypeError)) throw error;
      await this.update(row, { status: 'Deleted', message: error.message });
      await this.send(row, {
        phase: 'FAILED',
        message: `Skaha did not create the session: ${error.message}`,
      });
    }
  }

  private async created(row: SessionRow, id: string): Promise<void> {
    await this.update(row, { session_id: id, created_at: Date.now() });
    this.options.onChange();
  }

  /** Applies one sighting of a tracked session (by component), reporting what it means. */
  observe(component: string, sighting: Sighting, sequence?: number): Promise<void> {
    return this.serial(component, async () => {
      const row = await this.row(component);
      if (!row || row.status === 'Deleted') return;
      if (sequence !== undefined) {
        if (sequence <= row.skaha_sequence) return;
        row.skaha_sequence = sequence;
      }
      const record = () =>
        this.update(row, {
          skaha_sequence: row.skaha_sequence,
          status: sighting.status,
          ...(sighting.session ? { snapshot: JSON.stringify(sighting.session) } : {}),
          ...(sighting.message ? { message: sighting.message } : {}),
        });
      if (sighting.status === row.status) return record();
      // A change, from a callback or a listing: part of the trace of the command behind the session.
      await inStoredTrace(
        'skaha',
        `skaha session ${sighting.status}`,
        row.traceparent,
        { attributes: { 'skaha.session_id': row.session_id ?? '', 'srcnet.step_id': row.step_id } },
        async () => {
          await record();
          await this.react(row, sighting);
        },
      );
    });
  }

  private async react(row: SessionRow, sighting: Sighting): Promise<void> {
    if (FINAL.has(row.phase)) return;
    if (row.intent !== 'run') {
      if (sighting.status === 'Deleted')
        await this.send(row, { phase: row.intent === 'release' ? 'COMPLETED' : 'CANCELLED' });
      return;
    }
    switch (sighting.status) {
      case 'Running': {
        if (row.phase !== 'PREPARING') return;
        const observation = this.startObservation(row, sighting.at, 'ok');
        if (row.type === 'notebook') {
          const location = sighting.session?.connectURL;
          await this.send(row, {
            phase: 'AVAILABLE',
            observation,
            ...(location
              ? {
                  connectors: [
                    { kind: 'urn:jupyter-notebook', status: 'AVAILABLE', protocol: 'HTTPS', location },
                  ],
                }
              : {}),
          });
        } else await this.send(row, { phase: 'RUNNING', observation });
        return;
      }
      case 'Completed':
      case 'Failed': {
        const failed = sighting.status === 'Failed';
        const message = sighting.message ?? (failed ? await this.failureMessage(row) : undefined);
        await this.send(row, {
          phase: failed ? 'FAILED' : 'COMPLETED',
          ...(message ? { message } : {}),
          ...(row.phase === 'PREPARING'
            ? { observation: this.startObservation(row, sighting.at, failed ? 'failed' : 'ok') }
            : {}),
        });
        // A finished session holds nothing, but Skaha lists it until deleted; keep the listing short.
        await this.remove(row);
        return;
      }
      case 'Terminating':
      case 'Deleted':
        await this.send(row, {
          phase: 'FAILED',
          message: `the Skaha session ${row.session_id} was deleted outside the broker`,
        });
        return;
      default:
        return;
    }
  }

  private startObservation(
    row: SessionRow,
    at: number,
    outcome: 'ok' | 'failed',
  ): Ivoa.PreparationObservation {
    return {
      action: 'session-start',
      // The generated type says nothing of params' fields; ARCHITECTURE.md "Estimation history" does.
      params: {
        type: row.type,
        cores: row.cores,
        memoryGiB: row.memory_gib,
        inFlight: row.in_flight,
      } as unknown as Ivoa.PreparationObservation['params'],
      startedAt: new Date(row.create_requested_at).toISOString(),
      durationSeconds: Math.max(0, (at - row.create_requested_at) / 1000),
      outcome,
    };
  }

  /** The batched watcher sees only the status; the session's events say why it failed. */
  private async failureMessage(row: SessionRow): Promise<string> {
    const fallback = `the Skaha session ${row.session_id} failed`;
    try {
      const events = parseEventsTable(await this.options.api.getSessionEvents(row.session_id!));
      return events.filter((event) => event.type === 'Warning').at(-1)?.message ?? fallback;
    } catch (error) {
      this.options.log.warn(
        { err: error, session: row.session_id },
        'cannot read the events of a failed session',
      );
      return fallback;
    }
  }

  /** Deletes the session once; its disappearance (callback or listing) completes a release or cancel. */
  private async remove(row: SessionRow): Promise<void> {
    if (row.delete_requested_at !== null || row.session_id === null) return;
    try {
      await this.options.api.deleteSession(row.session_id);
      await this.update(row, { delete_requested_at: Date.now() });
      this.options.onChange();
    } catch (error) {
      this.options.log.error({ err: error, session: row.session_id }, 'deleting the Skaha session failed');
      if (row.intent !== 'run')
        await this.send(row, {
          phase: 'FAILED',
          message: `Skaha did not delete the session: ${errorText(error)}`,
        });
    }
  }

  /** A callback's session: by id, or by name while the create that made it has not answered yet. */
  async componentOf(sessionId: string, name: string): Promise<string | undefined> {
    const row = await this.options.db
      .selectFrom('sessions')
      .select('component_uuid')
      .where((eb) =>
        eb.or([
          eb('session_id', '=', sessionId),
          eb.and([eb('session_id', 'is', null), eb('name', '=', name)]),
        ]),
      )
      .executeTakeFirst();
    return row?.component_uuid;
  }

  /** Sessions whose changes still matter: created and not yet gone. */
  watched(): Promise<SessionRow[]> {
    return this.options.db
      .selectFrom('sessions')
      .selectAll()
      .where('session_id', 'is not', null)
      .where((eb) => eb.or([eb('status', 'is', null), eb('status', '!=', 'Deleted')]))
      .execute();
  }

  /**
   * Whether anything is being created, starting, stopping, or running as a headless job whose end
   * the broker waits for (the watcher then looks more often); steady notebooks are not.
   */
  async busy(): Promise<boolean> {
    const row = await this.options.db
      .selectFrom('sessions')
      .select('component_uuid')
      .where((eb) =>
        eb.or([
          eb('status', 'is', null),
          eb('status', '=', 'Pending'),
          eb('status', '=', 'Terminating'),
          eb.and([eb('type', '=', 'headless'), eb('status', '=', 'Running')]),
          eb.and([eb('delete_requested_at', 'is not', null), eb('status', '!=', 'Deleted')]),
        ]),
      )
      .executeTakeFirst();
    return row !== undefined;
  }

  /**
   * One listing applied to every watched session: a session missing from a listing that began
   * after it was created is gone.
   */
  async reconcile(listing: Session[], listedAt: number): Promise<void> {
    const byId = new Map(listing.map((session) => [session.id, session]));
    await Promise.all(
      (await this.watched()).map((row) => {
        const session = byId.get(row.session_id!);
        if (session)
          return this.observe(row.component_uuid, { status: session.status, session, at: listedAt });
        if (row.created_at !== null && row.created_at < listedAt)
          return this.observe(row.component_uuid, { status: 'Deleted', at: listedAt });
        return undefined;
      }),
    );
  }

  rowsOfSteps(stepIds: readonly string[]): Promise<SessionRow[]> {
    if (stepIds.length === 0) return Promise.resolve([]);
    return this.options.db
      .selectFrom('sessions')
      .selectAll()
      .where('step_id', 'in', [...stepIds])
      .execute();
  }

  rowsOfSessions(sessionIds: readonly string[]): Promise<SessionRow[]> {
    if (sessionIds.length === 0) return Promise.resolve([]);
    return this.options.db
      .selectFrom('sessions')
      .selectAll()
      .where('session_id', 'in', [...sessionIds])
      .execute();
  }

  private row(component: string): Promise<SessionRow | undefined> {
    return this.options.db
      .selectFrom('sessions')
      .selectAll()
      .where('component_uuid', '=', component)
      .executeTakeFirst();
  }

  private async update(row: SessionRow, changes: Partial<SessionRow>): Promise<void> {
    Object.assign(row, changes, { updated_at: Date.now() });
    await this.options.db
      .updateTable('sessions')
      .set({ ...changes, updated_at: row.updated_at })
      .where('component_uuid', '=', row.component_uuid)
      .execute();
  }

  private async send(
    row: SessionRow,
    fields: Omit<CallbackFields, 'stepId' | 'componentUuid'>,
  ): Promise<void> {
    await this.update(row, { phase: fields.phase });
    await this.options.outbox.enqueue(row.callback_url, {
      stepId: row.step_id,
      componentUuid: row.component_uuid,
      ...fields,
    });
  }

  private report(
    command: Ivoa.WorkerCommand,
    fields: Omit<CallbackFields, 'stepId' | 'componentUuid'>,
  ): Promise<void> {
    return this.options.outbox.enqueue(command.callbackUrl, {
      stepId: command.stepId,
      componentUuid: command.component.uuid,
      ...fields,
    });
  }
}
