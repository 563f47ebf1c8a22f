/**
 * Project webhook policies and the events they receive, in Harbor's Default payload format
 * (`{type, occur_at, operator, event_data}`) or its CloudEvents format.
 */
import { randomUUID } from 'node:crypto';
import type { WebhookEventType, WebhookPolicy, WebhookTarget } from '../../src/harbor/types.ts';
import type { WebhookPayload } from '../../src/harbor/webhooks.ts';
import { CLOUD_EVENT_TYPES } from '../../src/harbor/webhooks.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { WebhookNotifier } from './notifier.ts';

export const EVENT_TYPES: readonly WebhookEventType[] = [
  'PUSH_ARTIFACT',
  'PULL_ARTIFACT',
  'DELETE_ARTIFACT',
  'QUOTA_EXCEED',
  'QUOTA_WARNING',
  'SCANNING_FAILED',
  'SCANNING_STOPPED',
  'SCANNING_COMPLETED',
  'REPLICATION',
  'TAG_RETENTION',
];

const CLOUD_EVENT_NAME = Object.fromEntries(
  Object.entries(CLOUD_EVENT_TYPES).map(([name, type]) => [type, name]),
) as Record<WebhookEventType, string>;

export type EventData = NonNullable<WebhookPayload['event_data']>;

function validTarget(target: unknown, i: number): WebhookTarget {
  if (typeof target !== 'object' || target === null)
    throw new HarborFailure(400, 'BAD_REQUEST', `targets[${i}] must be an object`);
  const { type, address, auth_header, skip_cert_verify, payload_format } = target as Record<string, unknown>;
  if (type !== 'http' && type !== 'slack')
    throw new HarborFailure(400, 'BAD_REQUEST', `targets[${i}].type must be "http" or "slack"`);
  let url: URL | undefined;
  try {
    url = typeof address === 'string' ? new URL(address) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new HarborFailure(400, 'BAD_REQUEST', `targets[${i}].address must be an http(s) URL`);
  if (auth_header !== undefined && typeof auth_header !== 'string')
    throw new HarborFailure(400, 'BAD_REQUEST', `targets[${i}].auth_header must be a string`);
  if (type === 'slack' && payload_format)
    throw new HarborFailure(
      400,
      'BAD_REQUEST',
      `targets[${i}].payload_format is not allowed for slack targets`,
    );
  const format = payload_format ?? 'Default';
  if (format !== 'Default' && format !== 'CloudEvents')
    throw new HarborFailure(
      400,
      'BAD_REQUEST',
      `targets[${i}].payload_format must be "Default" or "CloudEvents"`,
    );
  return {
    type,
    address: address as string,
    auth_header: (auth_header as string | undefined) ?? '',
    skip_cert_verify: skip_cert_verify === true,
    ...(type === 'http' ? { payload_format: format } : {}),
  };
}

export class WebhookPolicies {
  private readonly policies = new Map<number, WebhookPolicy>();
  private nextId = 1;
  /** Events published, before fan-out to targets. */
  events = 0;
  /** Events raised while Harbor is down, sent once it is back. */
  private held: (() => void)[] | undefined;

  constructor(private readonly notifier: WebhookNotifier) {}

  create(projectId: number, body: unknown, creator: string): WebhookPolicy {
    if (typeof body !== 'object' || body === null)
      throw new HarborFailure(400, 'BAD_REQUEST', 'the body must be a webhook policy object');
    const input = body as Record<string, unknown>;
    if (typeof input.name !== 'string' || input.name.trim() === '')
      throw new HarborFailure(400, 'BAD_REQUEST', 'name must be a non-empty string');
    if (!Array.isArray(input.targets) || input.targets.length === 0)
      throw new HarborFailure(400, 'BAD_REQUEST', 'targets must list at least one target');
    if (!Array.isArray(input.event_types) || input.event_types.length === 0)
      throw new HarborFailure(400, 'BAD_REQUEST', 'event_types must list at least one event type');
    for (const type of input.event_types)
      if (!EVENT_TYPES.includes(type as WebhookEventType))
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          `event_types: ${String(type)} is not one of ${EVENT_TYPES.join(', ')}`,
        );
    for (const policy of this.policies.values())
      if (policy.project_id === projectId && policy.name === input.name)
        throw new HarborFailure(
          409,
          'CONFLICT',
          `webhook policy ${input.name} already exists in this project`,
        );
    const now = new Date().toISOString();
    const policy: WebhookPolicy = {
      id: this.nextId++,
      name: input.name,
      description: typeof input.description === 'string' ? input.description : '',
      project_id: projectId,
      targets: input.targets.map(validTarget),
      event_types: [...new Set(input.event_types as WebhookEventType[])],
      creator,
      creation_time: now,
      update_time: now,
      enabled: input.enabled !== false,
    };
    this.policies.set(policy.id, policy);
    return policy;
  }

  list(projectId: number): WebhookPolicy[] {
    return [...this.policies.values()].filter((policy) => policy.project_id === projectId);
  }

  get(projectId: number, id: number): WebhookPolicy | undefined {
    const policy = this.policies.get(id);
    return policy?.project_id === projectId ? policy : undefined;
  }

  delete(projectId: number, id: number): boolean {
    return this.get(projectId, id) !== undefined && this.policies.delete(id);
  }

  /** Holds events back (Harbor is down) until release(). */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const send of held) send();
  }

  /** Sends an event to every enabled policy of the project that subscribes to its type. */
  publish(projectId: number, type: WebhookEventType, operator: string, data: EventData): void {
    if (this.held) {
      this.held.push(() => this.publish(projectId, type, operator, data));
      return;
    }
    this.events += 1;
    const occurAt = new Date();
    for (const policy of this.policies.values()) {
      if (policy.project_id !== projectId || !policy.enabled || !policy.event_types.includes(type)) continue;
      policy.targets.forEach((target, i) => {
        if (target.type !== 'http') return;
        const cloud = target.payload_format === 'CloudEvents';
        const payload = cloud
          ? {
              specversion: '1.0',
              id: randomUUID(),
              requestid: randomUUID(),
              source: `/projects/${projectId}/webhook/policies/${policy.id}`,
              type: CLOUD_EVENT_NAME[type],
              datacontenttype: 'application/json',
              time: occurAt.toISOString(),
              operator,
              data,
            }
          : ({
              type,
              occur_at: Math.floor(occurAt.getTime() / 1000),
              operator,
              event_data: data,
            } satisfies WebhookPayload);
        this.notifier.enqueue({
          targetKey: `${policy.id}/${i}`,
          address: target.address,
          ...(target.auth_header ? { authHeader: target.auth_header } : {}),
          contentType: cloud ? 'application/cloudevents+json' : 'application/json',
          body: JSON.stringify(payload),
        });
      });
    }
  }
}
