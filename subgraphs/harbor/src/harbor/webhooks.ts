/**
 * What Harbor POSTs to a webhook target (`src/pkg/notifier/model/event.go`,
 * `src/controller/event/model/event.go`), and how a receiver checks and reads it. Harbor signs
 * nothing: the only proof of origin is the policy's `auth_header`, echoed as `Authorization`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { WebhookEventType } from './types.ts';

/** Raw jobservice statuses, as REPLICATION events carry them (not the API's Succeed/Failed). */
export type JobStatus = 'Pending' | 'Scheduled' | 'Running' | 'Success' | 'Error' | 'Stopped';

export interface WebhookResource {
  digest?: string;
  /** The first tag, or the digest when untagged. */
  tag?: string;
  resource_url?: string;
}

export interface WebhookRepository {
  date_created?: number;
  name: string;
  namespace: string;
  repo_full_name: string;
  repo_type: 'public' | 'private' | (string & {});
}

export interface ReplicationResource {
  registry_name?: string;
  registry_type: string;
  endpoint: string;
  namespace?: string;
}

export interface ReplicatedArtifact {
  type: string;
  status: string;
  /** e.g. "oligia-webtop [1 item(s) in total]". */
  name_tag: string;
  references: string[];
  fail_reason?: string;
}

export interface ReplicationEventData {
  harbor_hostname?: string;
  job_status?: JobStatus;
  description?: string;
  artifact_type?: string;
  authentication_type?: string;
  override_mode?: boolean;
  /** Raw trigger: MANUAL, SCHEDULE or EVENT. */
  trigger_type?: string;
  policy_creator?: string;
  execution_timestamp?: number;
  src_resource?: ReplicationResource;
  dest_resource?: ReplicationResource;
  successful_artifact?: ReplicatedArtifact[];
  failed_artifact?: ReplicatedArtifact[];
  execution_id?: number;
  task_id?: number;
}

export interface WebhookPayload {
  type: WebhookEventType | (string & {});
  /** Unix seconds. */
  occur_at: number;
  operator: string;
  event_data?: {
    resources?: WebhookResource[];
    repository?: WebhookRepository;
    replication?: ReplicationEventData;
    custom_attributes?: Record<string, string>;
  };
}

/** CloudEvents `type` values and the Default-format event types they stand for. */
export const CLOUD_EVENT_TYPES: Record<string, WebhookEventType> = {
  'harbor.artifact.pushed': 'PUSH_ARTIFACT',
  'harbor.artifact.pulled': 'PULL_ARTIFACT',
  'harbor.artifact.deleted': 'DELETE_ARTIFACT',
  'harbor.quota.exceeded': 'QUOTA_EXCEED',
  'harbor.quota.warned': 'QUOTA_WARNING',
  'harbor.replication.status.changed': 'REPLICATION',
  'harbor.scan.completed': 'SCANNING_COMPLETED',
  'harbor.scan.failed': 'SCANNING_FAILED',
  'harbor.scan.stopped': 'SCANNING_STOPPED',
  'harbor.tag_retention.finished': 'TAG_RETENTION',
};

export class WebhookPayloadError extends Error {
  constructor(field: string, rule: string) {
    super(`webhook payload: ${field} ${rule}`);
    this.name = 'WebhookPayloadError';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads a delivery in either payload format into the Default shape, checking the fields a
 * receiver relies on. CloudEvents' `time` becomes `occur_at`, and its `data` `event_data`.
 */
export function parseWebhookPayload(body: unknown): WebhookPayload {
  if (!isObject(body)) throw new WebhookPayloadError('body', 'must be a JSON object');
  if (body.specversion !== undefined) {
    const type = typeof body.type === 'string' ? CLOUD_EVENT_TYPES[body.type] : undefined;
    if (!type)
      throw new WebhookPayloadError('type', `must be one of ${Object.keys(CLOUD_EVENT_TYPES).join(', ')}`);
    const time = typeof body.time === 'string' ? Date.parse(body.time) : NaN;
    if (Number.isNaN(time)) throw new WebhookPayloadError('time', 'must be an RFC 3339 date-time');
    return {
      type,
      occur_at: Math.floor(time / 1000),
      operator: typeof body.operator === 'string' ? body.operator : '',
      ...(isObject(body.data) ? { event_data: body.data as WebhookPayload['event_data'] } : {}),
    };
  }
  if (typeof body.type !== 'string' || body.type === '')
    throw new WebhookPayloadError('type', 'must be a non-empty string');
  if (typeof body.occur_at !== 'number' || !Number.isInteger(body.occur_at))
    throw new WebhookPayloadError('occur_at', 'must be an integer (Unix seconds)');
  if (typeof body.operator !== 'string') throw new WebhookPayloadError('operator', 'must be a string');
  if (body.event_data !== undefined && !isObject(body.event_data))
    throw new WebhookPayloadError('event_data', 'must be an object');
  const replication = isObject(body.event_data) ? body.event_data.replication : undefined;
  if (body.type === 'REPLICATION') {
    if (!isObject(replication))
      throw new WebhookPayloadError('event_data.replication', 'must be an object in a REPLICATION event');
    if (typeof replication.execution_id !== 'number')
      throw new WebhookPayloadError('event_data.replication.execution_id', 'must be a number');
    if (typeof replication.job_status !== 'string')
      throw new WebhookPayloadError('event_data.replication.job_status', 'must be a string');
  }
  return body as unknown as WebhookPayload;
}

/**
 * Whether a delivery's Authorization header is the policy's auth_header, compared in constant
 * time so that a guesser learns nothing from response timing.
 */
export function webhookAuthorized(received: string | undefined, expected: string): boolean {
  const a = Buffer.from(received ?? '', 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
