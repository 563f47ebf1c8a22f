/** `/replication/policies` and `/replication/executions` (system administration). */
import type { FastifyInstance } from 'fastify';
import { HarborFailure } from '../artifacts/store.ts';
import type { HarborCore } from '../core.ts';
import { created, integerParam, matchesQ, paginate, parseQ, requirePermission } from '../http/support.ts';

type Params = Record<string, string>;

export function replicationRoutes(app: FastifyInstance, core: HarborCore): void {
  const api = '/api/v2.0/replication';
  const engine = core.replication;

  app.get(`${api}/policies`, async (request, reply) => {
    requirePermission(core, request, { resource: 'replication-policy', action: 'list' });
    const query = request.query as Params;
    const q = parseQ(query.q);
    const policies = engine
      .listPolicies()
      .filter((p) => matchesQ(q.get('name'), p.name) && (!query.name || p.name.includes(query.name)));
    return paginate(request, reply, policies).map((p) => engine.policyView(p));
  });

  app.post(`${api}/policies`, async (request, reply) => {
    requirePermission(core, request, { resource: 'replication-policy', action: 'create' });
    const policy = engine.createPolicy(request.body, request.principal.name);
    return created(reply, `${api}/policies/${policy.id}`).send();
  });

  app.get(`${api}/policies/:id`, async (request) => {
    requirePermission(core, request, { resource: 'replication-policy', action: 'read' });
    const id = integerParam((request.params as Params).id!, 'id');
    const policy = engine.getPolicy(id);
    if (!policy) throw new HarborFailure(404, 'NOT_FOUND', `policy ${id} not found`);
    return engine.policyView(policy);
  });

  app.delete(`${api}/policies/:id`, async (request) => {
    requirePermission(core, request, { resource: 'replication-policy', action: 'delete' });
    const id = integerParam((request.params as Params).id!, 'id');
    if (!engine.deletePolicy(id)) throw new HarborFailure(404, 'NOT_FOUND', `policy ${id} not found`);
    return {};
  });

  app.get(`${api}/executions`, async (request, reply) => {
    requirePermission(core, request, { resource: 'replication', action: 'list' });
    const query = request.query as Params;
    const policyId = query.policy_id === undefined ? undefined : integerParam(query.policy_id, 'policy_id');
    const executions = engine.listExecutions({
      ...(policyId !== undefined ? { policyId } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.trigger ? { trigger: query.trigger } : {}),
    });
    return paginate(request, reply, executions);
  });

  app.post(`${api}/executions`, async (request, reply) => {
    requirePermission(core, request, { resource: 'replication', action: 'create' });
    const body = request.body as { policy_id?: unknown } | undefined;
    if (typeof body?.policy_id !== 'number' || !Number.isSafeInteger(body.policy_id))
      throw new HarborFailure(400, 'BAD_REQUEST', 'policy_id must be an integer');
    const trigger = (request.query as Params).trigger === 'scheduled' ? 'scheduled' : 'manual';
    const id = engine.start(body.policy_id, request.principal.name, trigger);
    return created(reply, `${api}/executions/${id}`).send();
  });

  app.get(`${api}/executions/:id`, async (request) => {
    requirePermission(core, request, { resource: 'replication', action: 'read' });
    const id = integerParam((request.params as Params).id!, 'id');
    const execution = engine.getExecution(id);
    if (!execution) throw new HarborFailure(404, 'NOT_FOUND', `execution ${id} not found`);
    return execution;
  });

  app.put(`${api}/executions/:id`, async (request) => {
    requirePermission(core, request, { resource: 'replication', action: 'create' });
    engine.stop(integerParam((request.params as Params).id!, 'id'));
    return {};
  });

  app.get(`${api}/executions/:id/tasks`, async (request, reply) => {
    requirePermission(core, request, { resource: 'replication', action: 'read' });
    const id = integerParam((request.params as Params).id!, 'id');
    const status = (request.query as Params).status;
    const tasks = engine.listTasks(id, status ? { status } : {});
    if (!tasks) throw new HarborFailure(404, 'NOT_FOUND', `execution ${id} not found`);
    return paginate(request, reply, tasks);
  });
}
