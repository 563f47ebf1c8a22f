/** `/projects/{p}/webhook/...`: project webhook policies and the events they may subscribe to. */
import type { FastifyInstance } from 'fastify';
import { HarborFailure } from '../artifacts/store.ts';
import type { HarborCore } from '../core.ts';
import { created, integerParam, paginate, projectParam, requirePermission } from '../http/support.ts';
import { EVENT_TYPES } from './policies.ts';

type Params = Record<string, string>;

export function webhookRoutes(app: FastifyInstance, core: HarborCore): void {
  const base = '/api/v2.0/projects/:project_name_or_id/webhook';

  app.get(`${base}/policies`, async (request, reply) => {
    const project = projectParam(core, request, (request.params as Params).project_name_or_id!);
    requirePermission(core, request, { project, resource: 'notification-policy', action: 'list' });
    return paginate(request, reply, core.webhooks.list(project.id));
  });

  app.post(`${base}/policies`, async (request, reply) => {
    const project = projectParam(core, request, (request.params as Params).project_name_or_id!);
    requirePermission(core, request, { project, resource: 'notification-policy', action: 'create' });
    const policy = core.webhooks.create(project.id, request.body, request.principal.name);
    return created(reply, `/api/v2.0/projects/${project.id}/webhook/policies/${policy.id}`).send();
  });

  app.get(`${base}/policies/:webhook_policy_id`, async (request) => {
    const params = request.params as Params;
    const project = projectParam(core, request, params.project_name_or_id!);
    requirePermission(core, request, { project, resource: 'notification-policy', action: 'read' });
    const id = integerParam(params.webhook_policy_id!, 'webhook_policy_id');
    const policy = core.webhooks.get(project.id, id);
    if (!policy)
      throw new HarborFailure(404, 'NOT_FOUND', `webhook policy ${id} not found in project ${project.name}`);
    return policy;
  });

  app.delete(`${base}/policies/:webhook_policy_id`, async (request) => {
    const params = request.params as Params;
    const project = projectParam(core, request, params.project_name_or_id!);
    requirePermission(core, request, { project, resource: 'notification-policy', action: 'delete' });
    const id = integerParam(params.webhook_policy_id!, 'webhook_policy_id');
    if (!core.webhooks.delete(project.id, id))
      throw new HarborFailure(404, 'NOT_FOUND', `webhook policy ${id} not found in project ${project.name}`);
    return {};
  });

  app.get(`${base}/events`, async (request) => {
    const project = projectParam(core, request, (request.params as Params).project_name_or_id!);
    requirePermission(core, request, { project, resource: 'notification-policy', action: 'read' });
    return {
      event_type: EVENT_TYPES,
      notify_type: ['http', 'slack'],
      payload_formats: [
        { notify_type: 'http', formats: ['Default', 'CloudEvents'] },
        { notify_type: 'slack', formats: ['Default'] },
      ],
    };
  });
}
