/**
 * A client of the Harbor v2.0 REST API (`/api/v2.0`) for what the image worker needs:
 * artifacts, projects (proxy caches included), registry endpoints, replication and webhooks.
 */
import { HarborError, readErrorItems } from './errors.ts';
import type { RetryOptions } from './retry.ts';
import { send, TransportError } from './retry.ts';
import type {
  Artifact,
  Project,
  ProjectReq,
  Registry,
  RegistryReq,
  ReplicationExecution,
  ReplicationExecutionStatus,
  ReplicationPolicy,
  ReplicationPolicyReq,
  ReplicationTask,
  RobotCreate,
  RobotCreated,
  SystemInfo,
  WebhookPolicy,
  WebhookPolicyReq,
} from './types.ts';

export interface HarborCredentials {
  username: string;
  password: string;
}

/**
 * Credentials of a robot account. Harbor names robots `robot$<name>` (`robot$<project>+<name>`
 * for project robots); the prefix is added when missing.
 */
export function robotCredentials(name: string, secret: string, prefix = 'robot$'): HarborCredentials {
  return { username: name.startsWith(prefix) ? name : `${prefix}${name}`, password: secret };
}

/** A project by numeric id or by name (names are sent with `X-Is-Resource-Name: true`). */
export type ProjectRef = string | number;

export interface Paging {
  page?: number;
  /** Harbor allows at most 100; its default is 10. */
  pageSize?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** The Harbor operations the image worker relies on. 404s come back as `undefined`. */
export interface HarborApi {
  ping(options?: CallOptions): Promise<void>;
  systemInfo(options?: CallOptions): Promise<SystemInfo>;
  /** An artifact by tag or digest, with its size and tags; undefined when Harbor answers 404. */
  getArtifact(
    project: string,
    repository: string,
    reference: string,
    options?: CallOptions,
  ): Promise<Artifact | undefined>;
  listArtifacts(
    project: string,
    repository: string,
    query?: Paging & { q?: string },
    options?: CallOptions,
  ): Promise<Artifact[]>;
  getProject(project: ProjectRef, options?: CallOptions): Promise<Project | undefined>;
  projectExists(name: string, options?: CallOptions): Promise<boolean>;
  listProjects(query?: Paging & { name?: string }, options?: CallOptions): Promise<Project[]>;
  /** Returns the new project's id. */
  createProject(project: ProjectReq, options?: CallOptions): Promise<number>;
  listRegistries(query?: Paging & { q?: string }, options?: CallOptions): Promise<Registry[]>;
  getRegistry(id: number, options?: CallOptions): Promise<Registry | undefined>;
  createRegistry(registry: RegistryReq, options?: CallOptions): Promise<number>;
  createReplicationPolicy(policy: ReplicationPolicyReq, options?: CallOptions): Promise<number>;
  listReplicationPolicies(
    query?: Paging & { name?: string },
    options?: CallOptions,
  ): Promise<ReplicationPolicy[]>;
  getReplicationPolicy(id: number, options?: CallOptions): Promise<ReplicationPolicy | undefined>;
  /** Starts an execution of the policy and returns its id. Never retried: a retry would start two. */
  startReplication(policyId: number, options?: CallOptions): Promise<number>;
  getReplicationExecution(id: number, options?: CallOptions): Promise<ReplicationExecution | undefined>;
  listReplicationExecutions(
    query?: Paging & { policyId?: number; status?: ReplicationExecutionStatus; trigger?: string },
    options?: CallOptions,
  ): Promise<ReplicationExecution[]>;
  stopReplicationExecution(id: number, options?: CallOptions): Promise<void>;
  listReplicationTasks(
    executionId: number,
    query?: Paging,
    options?: CallOptions,
  ): Promise<ReplicationTask[]>;
  createWebhookPolicy(project: ProjectRef, policy: WebhookPolicyReq, options?: CallOptions): Promise<number>;
  listWebhookPolicies(project: ProjectRef, query?: Paging, options?: CallOptions): Promise<WebhookPolicy[]>;
  createRobot(robot: RobotCreate, options?: CallOptions): Promise<RobotCreated>;
}

export interface HarborClientOptions {
  /** The Harbor root, e.g. `https://harbor.example`; `/api/v2.0` is added. */
  url: string;
  /** Basic credentials of a user or a robot (see robotCredentials). */
  credentials?: HarborCredentials;
  retry?: RetryOptions;
  fetch?: typeof fetch;
}

interface Call {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
}

/**
 * Harbor's router takes repository names as one path segment, so `a/b` must arrive as
 * `a%2Fb` after the web server's own decoding: it is encoded twice, `a%252Fb`.
 */
export function encodeRepositoryName(repository: string): string {
  return encodeURIComponent(encodeURIComponent(repository));
}

function projectSegment(project: ProjectRef): { segment: string; headers: Record<string, string> } {
  return typeof project === 'number'
    ? { segment: String(project), headers: {} }
    : { segment: encodeURIComponent(project), headers: { 'x-is-resource-name': 'true' } };
}

/** The id at the end of a create answer's `Location: /api/v2.0/.../{id}`. */
function idFromLocation(response: Response, what: string): number {
  const location = response.headers.get('location') ?? '';
  const id = Number(/\/(\d+)\/?$/.exec(location)?.[1]);
  if (!Number.isSafeInteger(id) || id <= 0)
    throw new HarborError('POST', what, response.status, [
      { code: 'UNKNOWN', message: `no id in Location "${location}"` },
    ]);
  return id;
}

function paging(query: Paging = {}): Record<string, number | undefined> {
  return { page: query.page, page_size: query.pageSize };
}

export class HarborClient implements HarborApi {
  private readonly base: string;
  private readonly authorization: string | undefined;

  constructor(private readonly options: HarborClientOptions) {
    const root = options.url.replace(/\/+$/, '').replace(/\/api\/v2\.0$/, '');
    if (!/^https?:\/\//.test(root)) throw new TypeError(`url must be an http(s) URL (got ${options.url})`);
    this.base = `${root}/api/v2.0`;
    const credentials = options.credentials;
    this.authorization = credentials
      ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`
      : undefined;
  }

  async ping(options: CallOptions = {}): Promise<void> {
    await this.call({ method: 'GET', path: '/ping', signal: options.signal });
  }

  async systemInfo(options: CallOptions = {}): Promise<SystemInfo> {
    return (await this.json({ method: 'GET', path: '/systeminfo', signal: options.signal })) as SystemInfo;
  }

  async getArtifact(
    project: string,
    repository: string,
    reference: string,
    options: CallOptions = {},
  ): Promise<Artifact | undefined> {
    return this.optional<Artifact>({
      method: 'GET',
      path: `/projects/${encodeURIComponent(project)}/repositories/${encodeRepositoryName(repository)}/artifacts/${encodeURIComponent(reference)}`,
      query: { with_tag: 'true' },
      signal: options.signal,
    });
  }

  async listArtifacts(
    project: string,
    repository: string,
    query: Paging & { q?: string } = {},
    options: CallOptions = {},
  ): Promise<Artifact[]> {
    return (await this.json({
      method: 'GET',
      path: `/projects/${encodeURIComponent(project)}/repositories/${encodeRepositoryName(repository)}/artifacts`,
      query: { ...paging(query), q: query.q, with_tag: 'true' },
      signal: options.signal,
    })) as Artifact[];
  }

  async getProject(project: ProjectRef, options: CallOptions = {}): Promise<Project | undefined> {
    const { segment, headers } = projectSegment(project);
    return this.optional<Project>({
      method: 'GET',
      path: `/projects/${segment}`,
      headers,
      signal: options.signal,
    });
  }

  async projectExists(name: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.call({
        method: 'HEAD',
        path: '/projects',
        query: { project_name: name },
        signal: options.signal,
      });
      return true;
    } catch (error) {
      if (error instanceof HarborError && error.notFound) return false;
      throw error;
    }
  }

  async listProjects(query: Paging & { name?: string } = {}, options: CallOptions = {}): Promise<Project[]> {
    return (await this.json({
      method: 'GET',
      path: '/projects',
      query: { ...paging(query), name: query.name },
      signal: options.signal,
    })) as Project[];
  }

  async createProject(project: ProjectReq, options: CallOptions = {}): Promise<number> {
    return idFromLocation(
      await this.call({ method: 'POST', path: '/projects', body: project, signal: options.signal }),
      '/projects',
    );
  }

  async listRegistries(query: Paging & { q?: string } = {}, options: CallOptions = {}): Promise<Registry[]> {
    return (await this.json({
      method: 'GET',
      path: '/registries',
      query: { ...paging(query), q: query.q },
      signal: options.signal,
    })) as Registry[];
  }

  async getRegistry(id: number, options: CallOptions = {}): Promise<Registry | undefined> {
    return this.optional<Registry>({ method: 'GET', path: `/registries/${id}`, signal: options.signal });
  }

  async createRegistry(registry: RegistryReq, options: CallOptions = {}): Promise<number> {
    return idFromLocation(
      await this.call({ method: 'POST', path: '/registries', body: registry, signal: options.signal }),
      '/registries',
    );
  }

  async createReplicationPolicy(policy: ReplicationPolicyReq, options: CallOptions = {}): Promise<number> {
    // Harbor's create handler reads only the deprecated `deletion`; send both so either wins.
    const deletion = policy.replicate_deletion ?? policy.deletion ?? false;
    const body = { ...policy, replicate_deletion: deletion, deletion };
    return idFromLocation(
      await this.call({ method: 'POST', path: '/replication/policies', body, signal: options.signal }),
      '/replication/policies',
    );
  }

  async listReplicationPolicies(
    query: Paging & { name?: string } = {},
    options: CallOptions = {},
  ): Promise<ReplicationPolicy[]> {
    return (await this.json({
      method: 'GET',
      path: '/replication/policies',
      query: { ...paging(query), name: query.name },
      signal: options.signal,
    })) as ReplicationPolicy[];
  }

  async getReplicationPolicy(id: number, options: CallOptions = {}): Promise<ReplicationPolicy | undefined> {
    return this.optional<ReplicationPolicy>({
      method: 'GET',
      path: `/replication/policies/${id}`,
      signal: options.signal,
    });
  }

  async startReplication(policyId: number, options: CallOptions = {}): Promise<number> {
    const response = await this.call({
      method: 'POST',
      path: '/replication/executions',
      body: { policy_id: policyId },
      signal: options.signal,
    });
    return idFromLocation(response, '/replication/executions');
  }

  async getReplicationExecution(
    id: number,
    options: CallOptions = {},
  ): Promise<ReplicationExecution | undefined> {
    return this.optional<ReplicationExecution>({
      method: 'GET',
      path: `/replication/executions/${id}`,
      signal: options.signal,
    });
  }

  async listReplicationExecutions(
    query: Paging & { policyId?: number; status?: ReplicationExecutionStatus; trigger?: string } = {},
    options: CallOptions = {},
  ): Promise<ReplicationExecution[]> {
    return (await this.json({
      method: 'GET',
      path: '/replication/executions',
      query: { ...paging(query), policy_id: query.policyId, status: query.status, trigger: query.trigger },
      signal: options.signal,
    })) as ReplicationExecution[];
  }

  async stopReplicationExecution(id: number, options: CallOptions = {}): Promise<void> {
    await this.call({ method: 'PUT', path: `/replication/executions/${id}`, signal: options.signal });
  }

  async listReplicationTasks(
    executionId: number,
    query: Paging = {},
    options: CallOptions = {},
  ): Promise<ReplicationTask[]> {
    return (await this.json({
      method: 'GET',
      path: `/replication/executions/${executionId}/tasks`,
      query: paging(query),
      signal: options.signal,
    })) as ReplicationTask[];
  }

  async createWebhookPolicy(
    project: ProjectRef,
    policy: WebhookPolicyReq,
    options: CallOptions = {},
  ): Promise<number> {
    const { segment, headers } = projectSegment(project);
    const path = `/projects/${segment}/webhook/policies`;
    return idFromLocation(
      await this.call({ method: 'POST', path, headers, body: policy, signal: options.signal }),
      path,
    );
  }

  async listWebhookPolicies(
    project: ProjectRef,
    query: Paging = {},
    options: CallOptions = {},
  ): Promise<WebhookPolicy[]> {
    const { segment, headers } = projectSegment(project);
    return (await this.json({
      method: 'GET',
      path: `/projects/${segment}/webhook/policies`,
      query: paging(query),
      headers,
      signal: options.signal,
    })) as WebhookPolicy[];
  }

  async createRobot(robot: RobotCreate, options: CallOptions = {}): Promise<RobotCreated> {
    return (await this.json({
      method: 'POST',
      path: '/robots',
      body: robot,
      signal: options.signal,
    })) as RobotCreated;
  }

  private async optional<T>(call: Call): Promise<T | undefined> {
    try {
      return (await this.json(call)) as T;
    } catch (error) {
      if (error instanceof HarborError && error.notFound) return undefined;
      throw error;
    }
  }

  private async json(call: Call): Promise<unknown> {
    const response = await this.call(call);
    const text = await response.text();
    if (text === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new HarborError(
        call.method,
        call.path,
        response.status,
        [{ code: 'UNKNOWN', message: 'the answer is not JSON' }],
        { cause: error },
      );
    }
  }

  /** Sends one call; answers other than 2xx become HarborError. */
  private async call(call: Call): Promise<Response> {
    const url = new URL(`${this.base}${call.path}`);
    for (const [key, value] of Object.entries(call.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
    if (this.authorization) headers.authorization = this.authorization;
    let body: string | undefined;
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(call.body);
    }
    let response: Response;
    try {
      response = await send(
        {
          method: call.method,
          url: url.toString(),
          headers,
          ...(body !== undefined ? { body } : {}),
          idempotent: call.method !== 'POST',
          ...(call.signal ? { signal: call.signal } : {}),
        },
        this.options.retry,
        this.options.fetch,
      );
    } catch (error) {
      if (error instanceof TransportError)
        throw new HarborError(
          call.method,
          call.path,
          0,
          [{ code: error.kind === 'timeout' ? 'TIMEOUT' : 'NETWORK', message: error.message }],
          {
            cause: error,
          },
        );
      throw error;
    }
    if (response.ok) return response;
    throw new HarborError(
      call.method,
      call.path,
      response.status,
      readErrorItems(await response.text().catch(() => '')),
    );
  }
}
