/** The Harbor v2.0 API client: `HarborApi`, its types, errors and webhook payloads. */
export type {
  CallOptions,
  HarborApi,
  HarborClientOptions,
  HarborCredentials,
  Paging,
  ProjectRef,
} from './client.ts';
export { encodeRepositoryName, HarborClient, robotCredentials } from './client.ts';
export type { HarborErrorCode } from './errors.ts';
export { HarborError } from './errors.ts';
export type { Exchange, RetryOptions } from './retry.ts';
export { DEFAULT_RETRY_OPTIONS, send, TransportError } from './retry.ts';
export type * from './types.ts';
export type {
  JobStatus,
  ReplicatedArtifact,
  ReplicationEventData,
  ReplicationResource,
  WebhookPayload,
  WebhookRepository,
  WebhookResource,
} from './webhooks.ts';
export {
  CLOUD_EVENT_TYPES,
  parseWebhookPayload,
  WebhookPayloadError,
  webhookAuthorized,
} from './webhooks.ts';
