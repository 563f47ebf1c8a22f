/** `/registries`: remote registry endpoints (system administration). */
import type { FastifyInstance } from 'fastify';
import { HarborFailure } from '../artifacts/store.ts';
import type { HarborCore } from '../core.ts';
import { created, integerParam, matchesQ, paginate, parseQ, requirePermission } from '../http/support.ts';

export function endpointRoutes(app: FastifyInstance, core: HarborCore): void {
  const api = '/api/v2.0';

  app.get(`${api}/registries`, async (request, reply) => {
    requirePermission(core, request, { resource: 'registry', action: 'list' });
    const query = request.query as Record<string, string | undefined>;
    const q = parseQ(query.q);
    const registries = core.endpoints
      .list()
      .filter(
        (r) =>
          matchesQ(q.get('name'), r.name) &&
          matchesQ(q.get('type'), r.type) &&
          (!query.name || r.name.includes(query.name)),
      );
    return paginate(request, reply, registries).map((r) => core.endpoints.view(r));
  });

  app.post(`${api}/registries`, async (request, reply) => {
    requirePermission(core, request, { resource: 'registry', action: 'create' });
    const registry = core.endpoints.create(request.body);
    return created(reply, `${api}/registries/${registry.id}`).send();
  });

  app.get(`${api}/registries/:id`, async (request) => {
    requirePermission(core, request, { resource: 'registry', action: 'read' });
    const id = integerParam((request.params as Record<string, string>).id!, 'id');
    const registry = core.endpoints.get(id);
    if (!registry) throw new HarborFailure(404, 'NOT_FOUND', `registry ${id} not found`);
    return core.endpoints.view(registry);
  });

  app.delete(`${api}/registries/:id`, async (request) => {
    requirePermission(core, request, { resource: 'registry', action: 'delete' });
    const id = integerParam((request.params as Record<string, string>).id!, 'id');
    for (const project of core.store.projects.values())
      if (project.registryId === id)
        throw new HarborFailure(
          412,
          'PRECONDITION',
          `registry ${id} is used by proxy cache project ${project.name}`,
        );
    for (const policy of core.replication.listPolicies())
      if (policy.src_registry?.id === id)
        throw new HarborFailure(
          412,
          'PRECONDITION',
          `registry ${id} is used by replication policy ${policy.name}`,
        );
    if (!core.endpoints.delete(id)) throw new HarborFailure(404, 'NOT_FOUND', `registry ${id} not found`);
    return {};
  });
}
