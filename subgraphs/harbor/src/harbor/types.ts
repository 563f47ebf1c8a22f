/**
 * The Harbor v2.0 API shapes we use, named and spelt as in goharbor/harbor
 * `api/v2.0/swagger.yaml` (snake_case on the wire). Fields Harbor may leave out are optional.
 */

export interface HarborErrorItem {
  code: string;
  message: string;
}

export interface ProjectMetadata {
  /** Harbor keeps project metadata as strings: "true" / "false". */
  public?: string;
  proxy_speed_kb?: string;
  max_upstream_conn?: string;
  proxy_cache_local_on_not_found?: string;
  [key: string]: string | undefined;
}

export interface Project {
  project_id: number;
  name: string;
  owner_id?: number;
  owner_name?: string;
  /** Set for a proxy-cache project: the registry endpoint it caches. */
  registry_id?: number;
  creation_time?: string;
  update_time?: string;
  repo_count?: number;
  metadata?: ProjectMetadata;
}

export interface ProjectReq {
  project_name: string;
  public?: boolean;
  metadata?: ProjectMetadata;
  storage_limit?: number;
  /** Makes the project a proxy cache of this registry endpoint. */
  registry_id?: number;
}

export type RegistryType =
  | 'harbor'
  | 'docker-hub'
  | 'docker-registry'
  | 'github-ghcr'
  | 'google-gcr'
  | 'aws-ecr'
  | 'azure-acr'
  | 'ali-acr'
  | 'jfrog-artifactory'
  | 'quay'
  | 'gitlab'
  | (string & {});

export interface RegistryCredential {
  type?: 'basic' | 'oauth' | 'secret' | (string & {});
  access_key?: string;
  access_secret?: string;
}

export interface Registry {
  id: number;
  name: string;
  url: string;
  type: RegistryType;
  description?: string;
  credential?: RegistryCredential;
  insecure?: boolean;
  /** `healthy` or `unhealthy`. */
  status?: string;
  creation_time?: string;
  update_time?: string;
}

export type RegistryReq = Omit<Registry, 'id' | 'status' | 'creation_time' | 'update_time'>;

export interface Platform {
  architecture?: string;
  os?: string;
  variant?: string;
  'os.version'?: string;
}

export interface ArtifactReference {
  parent_id?: number;
  child_id?: number;
  child_digest: string;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface Tag {
  id?: number;
  repository_id?: number;
  artifact_id?: number;
  name: string;
  push_time?: string;
  pull_time?: string;
  immutable?: boolean;
}

export interface Artifact {
  id: number;
  /** e.g. IMAGE, CHART, CNAB. */
  type: string;
  media_type?: string;
  manifest_media_type: string;
  project_id: number;
  repository_id?: number;
  repository_name?: string;
  digest: string;
  /** Manifest + config + layers for an image; index + children for an index. */
  size: number;
  push_time?: string;
  pull_time?: string;
  /** For images: architecture, os, created, author, config. */
  extra_attrs?: Record<string, unknown>;
  annotations?: Record<string, string>;
  /** Children of an index. */
  references?: ArtifactReference[] | null;
  tags?: Tag[] | null;
  labels?: unknown[] | null;
}

export interface ReplicationFilter {
  type: 'name' | 'tag' | 'label' | 'resource' | (string & {});
  value: string | string[];
  decoration?: 'matches' | 'excludes';
}

export interface ReplicationTrigger {
  type: 'manual' | 'scheduled' | 'event_based';
  trigger_settings?: { cron?: string };
}

export interface ReplicationPolicy {
  id: number;
  name: string;
  description?: string;
  /** Pull mode: the remote registry; the local Harbor side is left out (or id 0). */
  src_registry?: Pick<Registry, 'id'> & Partial<Registry>;
  dest_registry?: Pick<Registry, 'id'> & Partial<Registry>;
  dest_namespace?: string;
  /** -1 (legacy): flatten to dest_namespace/<last component>; N: replace the first N components. */
  dest_namespace_replace_count?: number;
  trigger?: ReplicationTrigger;
  filters?: ReplicationFilter[];
  replicate_deletion?: boolean;
  /** Deprecated twin of replicate_deletion, and the one Harbor's create handler reads. */
  deletion?: boolean;
  override?: boolean;
  enabled?: boolean;
  speed?: number;
  copy_by_chunk?: boolean;
  single_active_replication?: boolean;
  creation_time?: string;
  update_time?: string;
}

export type ReplicationPolicyReq = Omit<ReplicationPolicy, 'id' | 'creation_time' | 'update_time'>;

/** API-facing statuses; the webhook payloads carry the raw job statuses instead. */
export type ReplicationExecutionStatus = 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

export interface ReplicationExecution {
  id: number;
  policy_id: number;
  status: ReplicationExecutionStatus;
  /** e.g. "no resources need to be replicated" when the filters matched nothing. */
  status_text: string;
  trigger: 'manual' | 'scheduled' | 'event_based' | (string & {});
  start_time: string;
  end_time?: string;
  total: number;
  failed: number;
  succeed: number;
  in_progress: number;
  stopped: number;
}

export type ReplicationTaskStatus = 'Pending' | 'InProgress' | 'Succeed' | 'Failed' | 'Stopped';

export interface ReplicationTask {
  id: number;
  execution_id: number;
  status: ReplicationTaskStatus;
  job_id?: string;
  operation: string;
  resource_type: string;
  /** e.g. "ivoa/oligia-webtop [1 item(s) in total]". */
  src_resource: string;
  dst_resource: string;
  start_time?: string;
  end_time?: string;
}

export type WebhookEventType =
  | 'PUSH_ARTIFACT'
  | 'PULL_ARTIFACT'
  | 'DELETE_ARTIFACT'
  | 'QUOTA_EXCEED'
  | 'QUOTA_WARNING'
  | 'SCANNING_FAILED'
  | 'SCANNING_STOPPED'
  | 'SCANNING_COMPLETED'
  | 'REPLICATION'
  | 'TAG_RETENTION';

export interface WebhookTarget {
  type: 'http' | 'slack';
  address: string;
  /** Sent verbatim as the Authorization header of each delivery. */
  auth_header?: string;
  skip_cert_verify?: boolean;
  payload_format?: 'Default' | 'CloudEvents';
}

export interface WebhookPolicy {
  id: number;
  name: string;
  description?: string;
  project_id: number;
  targets: WebhookTarget[];
  event_types: WebhookEventType[];
  creator?: string;
  creation_time?: string;
  update_time?: string;
  enabled: boolean;
}

export type WebhookPolicyReq = Omit<
  WebhookPolicy,
  'id' | 'project_id' | 'creator' | 'creation_time' | 'update_time'
>;

export interface RobotAccess {
  resource: string;
  action: string;
  effect?: 'allow' | 'deny';
}

export interface RobotPermission {
  kind: 'project' | 'system';
  /** Project name, or `*` for every project, or `/` for system permissions. */
  namespace: string;
  access: RobotAccess[];
}

export interface RobotCreate {
  name: string;
  description?: string;
  secret?: string;
  level: 'project' | 'system';
  disable?: boolean;
  /** Days; -1 never expires. */
  duration: number;
  permissions: RobotPermission[];
}

export interface RobotCreated {
  id: number;
  /** With Harbor's prefix: `robot$name` or `robot$project+name`. */
  name: string;
  /** Shown only here. */
  secret: string;
  creation_time?: string;
  expires_at?: number;
}

export interface SystemInfo {
  harbor_version?: string;
  notification_enable?: boolean;
  external_url?: string;
  [key: string]: unknown;
}
