/**
 * Pull-mode replication: policies that copy images from a remote registry endpoint into a local
 * project, and executions made of one task per repository. A task takes time proportional to
 * the bytes it moves (configurable bandwidth, seeded jitter) and ends Success or Error; each
 * task status change fires a REPLICATION webhook with the raw job status, as Harbor does.
 */
import { randomBytes } from 'node:crypto';
import type {
  ReplicationExecution,
  ReplicationExecutionStatus,
  ReplicationFilter,
  ReplicationPolicy,
  ReplicationTask,
  ReplicationTaskStatus,
} from '../../src/harbor/types.ts';
import type { JobStatus, ReplicationEventData } from '../../src/harbor/webhooks.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { Timing } from '../config.ts';
import { transferMs } from '../config.ts';
import type { HarborCore } from '../core.ts';
import type { Random } from '@srcnet/service-kit';
import type { UpstreamImage } from '../registry/upstreams.ts';
import { transferSize } from '../registry/upstreams.ts';
import { compileFilters, destinationRepository, validateFilters } from './filters.ts';

interface ExecutionRecord {
  id: number;
  policyId: number;
  status: ReplicationExecutionStatus;
  statusText: string;
  trigger: 'manual' | 'scheduled' | 'event_based';
  operator: string;
  startTime: Date;
  endTime?: Date;
  taskIds: number[];
}

interface TaskRecord {
  id: number;
  executionId: number;
  jobStatus: JobStatus;
  jobId: string;
  sourceRepository: string;
  destinationRepository: string;
  references: string[];
  startTime?: Date;
  endTime?: Date;
  failReason?: string;
  timer?: NodeJS.Timeout;
}

const TASK_STATUS: Record<JobStatus, ReplicationTaskStatus> = {
  Pending: 'Pending',
  Scheduled: 'InProgress',
  Running: 'InProgress',
  Success: 'Succeed',
  Error: 'Failed',
  Stopped: 'Stopped',
};

const TRIGGER_TYPES = ['manual', 'scheduled', 'event_based'] as const;
const RAW_TRIGGER: Record<ExecutionRecord['trigger'], string> = {
  manual: 'MANUAL',
  scheduled: 'SCHEDULE',
  event_based: 'EVENT',
};
const NAMESPACE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

function finished(status: JobStatus): boolean {
  return status === 'Success' || status === 'Error' || status === 'Stopped';
}

/** "ivoa/oligia-webtop [1 item(s) in total]", as Harbor names a task's resources. */
function resourceName(repository: string, references: string[]): string {
  return `${repository} [${references.length} item(s) in total]`;
}

function splitResource(name: string): { namespace?: string; rest: string } {
  const slash = name.indexOf('/');
  return slash < 0 ? { rest: name } : { namespace: name.slice(0, slash), rest: name.slice(slash + 1) };
}

export interface ReplicationStats {
  executions: Partial<Record<ReplicationExecutionStatus, number>>;
  tasks: Partial<Record<ReplicationTaskStatus, number>>;
}

export class ReplicationEngine {
  private readonly policies = new Map<number, ReplicationPolicy & { creator: string }>();
  private readonly executions = new Map<number, ExecutionRecord>();
  private readonly tasks = new Map<number, TaskRecord>();
  private nextId = { policy: 1, execution: 1, task: 1 };

  constructor(
    private readonly core: HarborCore,
    private readonly timing: Timing,
    private readonly random: Random,
    private readonly failureRate: number,
  ) {}

  createPolicy(body: unknown, creator: string): ReplicationPolicy {
    if (typeof body !== 'object' || body === null)
      throw new HarborFailure(400, 'BAD_REQUEST', 'the body must be a replication policy');
    const input = body as Record<string, unknown>;
    if (typeof input.name !== 'string' || input.name === '')
      throw new HarborFailure(400, 'BAD_REQUEST', 'empty name');
    const registryId = (value: unknown) =>
      typeof value === 'object' && value !== null ? Number((value as { id?: unknown }).id ?? 0) : 0;
    const srcId = registryId(input.src_registry);
    const destId = registryId(input.dest_registry);
    if ((srcId !== 0) === (destId !== 0))
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        "either src_registry or dest_registry should be empty and the other one shouldn't be empty",
      );
    if (destId !== 0)
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'the emulator implements pull-mode replication only: set src_registry and leave dest_registry empty',
      );
    const source = this.core.endpoints.get(srcId);
    if (!source) throw new HarborFailure(400, 'BAD_REQUEST', `src_registry: registry ${srcId} not found`);
    const filterProblem = validateFilters(input.filters);
    if (filterProblem) throw new HarborFailure(400, 'BAD_REQUEST', filterProblem);
    const destNamespace = typeof input.dest_namespace === 'string' ? input.dest_namespace : '';
    if (destNamespace && !NAMESPACE.test(destNamespace))
      throw new HarborFailure(400, 'BAD_REQUEST', `invalid destination namespace: ${destNamespace}`);
    const trigger = (input.trigger ?? { type: 'manual' }) as {
      type?: unknown;
      trigger_settings?: { cron?: unknown };
    };
    if (!TRIGGER_TYPES.includes(trigger.type as (typeof TRIGGER_TYPES)[number]))
      throw new HarborFailure(400, 'BAD_REQUEST', 'invalid trigger type');
    if (trigger.type === 'scheduled') {
      const cron = typeof trigger.trigger_settings?.cron === 'string' ? trigger.trigger_settings.cron : '';
      const fields = cron.trim().split(/\s+/);
      if (cron === '')
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          'the cron string cannot be empty when the trigger type is scheduled',
        );
      if (fields.length !== 6)
        throw new HarborFailure(400, 'BAD_REQUEST', `invalid cron string for scheduled trigger: ${cron}`);
      if (fields[0] !== '0')
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          'the 1st field (indicating Seconds of time) of the cron setting must be 0',
        );
      if (fields[1] === '*')
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          '* is not allowed for the Minutes field of the cron setting of replication policy',
        );
    }
    if (trigger.type === 'event_based' && input.single_active_replication === true)
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'single active replication is not allowed for event_based triggers',
      );
    for (const policy of this.policies.values())
      if (policy.name === input.name)
        throw new HarborFailure(409, 'CONFLICT', `policy ${input.name} already exists`);
    const now = new Date().toISOString();
    // Harbor's create handler reads only the deprecated `deletion` field.
    const deletion = input.deletion === true;
    const policy: ReplicationPolicy & { creator: string } = {
      id: this.nextId.policy++,
      name: input.name,
      description: typeof input.description === 'string' ? input.description : '',
      src_registry: this.core.endpoints.view(source),
      dest_registry: { id: 0, name: 'Local', type: 'harbor', url: 'http://core:8080' },
      dest_namespace: destNamespace,
      dest_namespace_replace_count:
        typeof input.dest_namespace_replace_count === 'number' ? input.dest_namespace_replace_count : -1,
      trigger: {
        type: trigger.type as ExecutionRecord['trigger'],
        ...(trigger.trigger_settings
          ? { trigger_settings: trigger.trigger_settings as { cron?: string } }
          : {}),
      },
      filters: (input.filters as ReplicationFilter[] | undefined) ?? [],
      replicate_deletion: deletion,
      deletion,
      override: input.override !== false,
      enabled: input.enabled !== false,
      speed: typeof input.speed === 'number' && input.speed > 0 ? input.speed : 0,
      copy_by_chunk: input.copy_by_chunk === true,
      single_active_replication: input.single_active_replication === true,
      creation_time: now,
      update_time: now,
      creator,
    };
    this.policies.set(policy.id, policy);
    return policy;
  }

  policyView(policy: ReplicationPolicy & { creator?: string }): ReplicationPolicy {
    const { creator: _creator, ...view } = policy;
    const source = policy.src_registry && this.core.endpoints.get(policy.src_registry.id);
    return { ...view, ...(source ? { src_registry: this.core.endpoints.view(source) } : {}) };
  }

  listPolicies(): ReplicationPolicy[] {
    return [...this.policies.values()];
  }

  getPolicy(id: number): ReplicationPolicy | undefined {
    return this.policies.get(id);
  }

  deletePolicy(id: number): boolean {
    for (const execution of this.executions.values())
      if (execution.policyId === id && execution.status === 'InProgress')
        throw new HarborFailure(412, 'PRECONDITION', `policy ${id} has running executions`);
    return this.policies.delete(id);
  }

  /** Starts an execution; the copying happens in the background. */
  start(policyId: number, operator: string, trigger: ExecutionRecord['trigger'] = 'manual'): number {
    const policy = this.policies.get(policyId);
    if (!policy) throw new HarborFailure(404, 'NOT_FOUND', `policy ${policyId} not found`);
    if (!policy.enabled) throw new HarborFailure(412, 'PRECONDITION', `the policy ${policyId} is disabled`);
    if (
      policy.single_active_replication &&
      [...this.executions.values()].some((e) => e.policyId === policyId && e.status === 'InProgress')
    )
      throw new HarborFailure(412, 'PRECONDITION', `an execution of policy ${policyId} is already running`);
    const execution: ExecutionRecord = {
      id: this.nextId.execution++,
      policyId,
      status: 'InProgress',
      statusText: '',
      trigger,
      operator,
      startTime: new Date(),
      taskIds: [],
    };
    this.executions.set(execution.id, execution);
    void this.plan(execution, policy).catch((error: unknown) => {
      this.finish(execution, 'Failed', error instanceof Error ? error.message : String(error));
    });
    return execution.id;
  }

  /** Works out the tasks: one per source repository, with the tags the filters keep. */
  private async plan(
    execution: ExecutionRecord,
    policy: ReplicationPolicy & { creator: string },
  ): Promise<void> {
    const upstream = this.core.endpoints.upstream(policy.src_registry!.id);
    const filters = compileFilters(policy.filters);
    const repositories = filters.exactName
      ? [filters.exactName]
      : (await upstream.repositories()).filter(filters.name);
    const work: { repository: string; tags: string[] }[] = [];
    for (const repository of repositories) {
      const tags = filters.exactTag
        ? (await upstream.head(repository, filters.exactTag))
          ? [filters.exactTag]
          : []
        : (await upstream.tags(repository)).filter(filters.tag);
      if (tags.length > 0) work.push({ repository, tags });
    }
    if (execution.status !== 'InProgress') return;
    if (work.length === 0) {
      this.finish(execution, 'Succeed', 'no resources need to be replicated');
      return;
    }
    for (const { repository, tags } of work) {
      const task: TaskRecord = {
        id: this.nextId.task++,
        executionId: execution.id,
        jobStatus: 'Pending',
        jobId: randomBytes(12).toString('hex'),
        sourceRepository: repository,
        destinationRepository: destinationRepository(
          repository,
          policy.dest_namespace,
          policy.dest_namespace_replace_count ?? -1,
        ),
        references: tags,
      };
      this.tasks.set(task.id, task);
      execution.taskIds.push(task.id);
      task.timer = setTimeout(
        () => void this.run(task, policy),
        this.timing.taskScheduleMs * this.timing.timeScale,
      );
    }
  }

  private async run(task: TaskRecord, policy: ReplicationPolicy & { creator: string }): Promise<void> {
    if (task.jobStatus !== 'Pending') return;
    task.startTime = new Date();
    this.setStatus(task, 'Running');
    const upstream = this.core.endpoints.upstream(policy.src_registry!.id);
    const images: { tag: string; image: UpstreamImage }[] = [];
    try {
      for (const tag of task.references) {
        const image = await upstream.fetch(task.sourceRepository, tag);
        if (!image) throw new Error(`${task.sourceRepository}:${tag} not found in the source registry`);
        images.push({ tag, image });
      }
    } catch (error) {
      this.end(task, 'Error', error instanceof Error ? error.message : String(error));
      return;
    }
    // stop() may have ended the task while the images were being fetched.
    if ((task.jobStatus as JobStatus) !== 'Running') return;
    const bytes = images.reduce((sum, { image }) => sum + transferSize(image), 0);
    // policy.speed is KB/s, as in Harbor; 0 means unlimited, i.e. the emulator's bandwidth.
    const speed = policy.speed ? policy.speed * 1024 : undefined;
    const duration = transferMs(this.timing, this.random, this.timing.replicationOverheadMs, bytes, speed);
    const fails = this.random() < this.failureRate;
    task.timer = setTimeout(() => {
      if (task.jobStatus !== 'Running') return;
      if (fails) {
        this.end(task, 'Error', 'failed to copy the artifact: connection reset by peer (injected failure)');
        return;
      }
      try {
        for (const { tag, image } of images)
          this.core.storeImage(task.destinationRepository, image, tag, 'harbor-jobservice');
        this.end(task, 'Success');
      } catch (error) {
        this.end(task, 'Error', error instanceof Error ? error.message : String(error));
      }
    }, duration);
  }

  private setStatus(task: TaskRecord, status: JobStatus): void {
    task.jobStatus = status;
    this.notify(task);
  }

  private end(task: TaskRecord, status: 'Success' | 'Error' | 'Stopped', reason?: string): void {
    clearTimeout(task.timer);
    task.endTime = new Date();
    if (reason) task.failReason = reason;
    this.setStatus(task, status);
    const execution = this.executions.get(task.executionId)!;
    const tasks = execution.taskIds.map((id) => this.tasks.get(id)!);
    if (!tasks.every((t) => finished(t.jobStatus))) return;
    // Harbor's refreshStatus: any error → Failed; else any stopped → Stopped; else Succeed.
    const outcome: ReplicationExecutionStatus = tasks.some((t) => t.jobStatus === 'Error')
      ? 'Failed'
      : tasks.some((t) => t.jobStatus === 'Stopped')
        ? 'Stopped'
        : 'Succeed';
    this.finish(
      execution,
      outcome,
      outcome === 'Failed' ? (tasks.find((t) => t.failReason)?.failReason ?? '') : '',
    );
  }

  private finish(execution: ExecutionRecord, status: ReplicationExecutionStatus, text: string): void {
    if (execution.status !== 'InProgress') return;
    execution.status = status;
    execution.statusText = text;
    execution.endTime = new Date();
  }

  /** PUT /replication/executions/{id}: stops whatever has not finished. */
  stop(id: number): void {
    const execution = this.executions.get(id);
    if (!execution) throw new HarborFailure(404, 'NOT_FOUND', `execution ${id} not found`);
    const open = execution.taskIds
      .map((taskId) => this.tasks.get(taskId)!)
      .filter((task) => !finished(task.jobStatus));
    if (open.length === 0) this.finish(execution, 'Stopped', '');
    for (const task of open) this.end(task, 'Stopped');
  }

  /**
   * What a Harbor restart does to work in flight: the jobs die, so their tasks end in Error
   * (announced by webhook once Harbor is back) and their executions Failed.
   */
  interrupt(): void {
    for (const task of this.tasks.values())
      if (!finished(task.jobStatus))
        this.end(task, 'Error', 'the job was interrupted by a restart of Harbor');
    for (const execution of this.executions.values())
      this.finish(execution, 'Failed', 'interrupted by a restart of Harbor');
  }

  private notify(task: TaskRecord): void {
    const execution = this.executions.get(task.executionId)!;
    const policy = this.policies.get(execution.policyId);
    const source = policy?.src_registry && this.core.endpoints.get(policy.src_registry.id);
    const destProject = task.destinationRepository.split('/')[0]!;
    const project = this.core.store.projectByName(destProject);
    if (!policy || !source || !project) return;
    const src = splitResource(resourceName(task.sourceRepository, task.references));
    const dst = splitResource(resourceName(task.destinationRepository, task.references));
    const artifact = {
      type: 'image',
      status: task.jobStatus,
      name_tag: dst.rest,
      references: task.references,
    };
    const data: ReplicationEventData = {
      harbor_hostname: new URL(this.core.externalUrl).hostname,
      job_status: task.jobStatus,
      ...(policy.description ? { description: policy.description } : {}),
      artifact_type: 'image',
      ...(source.credential?.type ? { authentication_type: source.credential.type } : {}),
      ...(policy.override ? { override_mode: true } : {}),
      trigger_type: RAW_TRIGGER[execution.trigger],
      policy_creator: policy.creator,
      execution_timestamp: Math.floor(execution.startTime.getTime() / 1000),
      src_resource: {
        registry_name: source.name,
        registry_type: source.type,
        endpoint: source.url,
        ...(src.namespace ? { namespace: src.namespace } : {}),
      },
      dest_resource: {
        registry_type: 'harbor',
        endpoint: this.core.externalUrl,
        ...(dst.namespace ? { namespace: dst.namespace } : {}),
      },
      ...(task.jobStatus === 'Success' ? { successful_artifact: [artifact] } : {}),
      ...(task.jobStatus === 'Error'
        ? { failed_artifact: [{ ...artifact, ...(task.failReason ? { fail_reason: task.failReason } : {}) }] }
        : {}),
      execution_id: execution.id,
      task_id: task.id,
    };
    this.core.webhooks.publish(project.id, 'REPLICATION', execution.operator, { replication: data });
  }

  getExecution(id: number): ReplicationExecution | undefined {
    const execution = this.executions.get(id);
    return execution && this.executionView(execution);
  }

  listExecutions(filter: { policyId?: number; status?: string; trigger?: string }): ReplicationExecution[] {
    return [...this.executions.values()]
      .filter(
        (e) =>
          (filter.policyId === undefined || e.policyId === filter.policyId) &&
          (!filter.status || e.status === filter.status) &&
          (!filter.trigger || e.trigger === filter.trigger),
      )
      .sort((a, b) => b.id - a.id)
      .map((e) => this.executionView(e));
  }

  private executionView(execution: ExecutionRecord): ReplicationExecution {
    const tasks = execution.taskIds.map((id) => TASK_STATUS[this.tasks.get(id)!.jobStatus]);
    const count = (status: ReplicationTaskStatus) => tasks.filter((t) => t === status).length;
    return {
      id: execution.id,
      policy_id: execution.policyId,
      status: execution.status,
      status_text: execution.statusText,
      trigger: execution.trigger,
      start_time: execution.startTime.toISOString(),
      ...(execution.endTime ? { end_time: execution.endTime.toISOString() } : {}),
      total: tasks.length,
      failed: count('Failed'),
      succeed: count('Succeed'),
      in_progress: count('InProgress') + count('Pending'),
      stopped: count('Stopped'),
    };
  }

  listTasks(executionId: number, filter: { status?: string } = {}): ReplicationTask[] | undefined {
    const execution = this.executions.get(executionId);
    if (!execution) return undefined;
    return execution.taskIds
      .map((id) => this.tasks.get(id)!)
      .map((task) => ({
        id: task.id,
        execution_id: task.executionId,
        status: TASK_STATUS[task.jobStatus],
        job_id: task.jobId,
        operation: 'copy',
        resource_type: 'image',
        src_resource: resourceName(task.sourceRepository, task.references),
        dst_resource: resourceName(task.destinationRepository, task.references),
        ...(task.startTime ? { start_time: task.startTime.toISOString() } : {}),
        ...(task.endTime ? { end_time: task.endTime.toISOString() } : {}),
      }))
      .filter((task) => !filter.status || task.status === filter.status);
  }

  stats(): ReplicationStats {
    const stats: ReplicationStats = { executions: {}, tasks: {} };
    for (const e of this.executions.values())
      stats.executions[e.status] = (stats.executions[e.status] ?? 0) + 1;
    for (const t of this.tasks.values()) {
      const status = TASK_STATUS[t.jobStatus];
      stats.tasks[status] = (stats.tasks[status] ?? 0) + 1;
    }
    return stats;
  }

  close(): void {
    for (const task of this.tasks.values()) clearTimeout(task.timer);
  }
}
