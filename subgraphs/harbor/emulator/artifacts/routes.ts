/** `/projects`, `/projects/{p}/repositories` and their artifacts. */
import type { FastifyInstance } from 'fastify';
import type { ProjectReq } from '../../src/harbor/types.ts';
import { isDigest } from '../../src/registry/reference.ts';
import type { HarborCore } from '../core.ts';
import {
  created,
  matchesQ,
  paginate,
  parseQ,
  projectParam,
  repositoryParam,
  requirePermission,
  requireSignedIn,
} from '../http/support.ts';
import { HarborFailure } from './store.ts';
import { artifactView, projectView, repositoryView } from './views.ts';

/** Endpoint types Harbor permits for proxy caches by default (PERMITTED_REGISTRY_TYPES_FOR_PROXY_CACHE). */
const PROXY_TYPES = new Set([
  'docker-hub',
  'harbor',
  'azure-acr',
  'ali-acr',
  'aws-ecr',
  'google-gcr',
  'docker-registry',
  'github-ghcr',
  'jfrog-artifactory',
]);

type Params = Record<string, string>;

export function artifactRoutes(app: FastifyInstance, core: HarborCore): void {
  const api = '/api/v2.0';

  app.head(`${api}/projects`, async (request, reply) => {
    const name = (request.query as Params).project_name;
    if (!name) throw new HarborFailure(400, 'BAD_REQUEST', 'project_name is required');
    return reply.code(core.store.projectByName(name) ? 200 : 404).send();
  });

  app.get(`${api}/projects`, async (request, reply) => {
    const query = request.query as Params;
    const q = parseQ(query.q);
    const visible = [...core.store.projects.values()].filter(
      (project) =>
        core.access.can(request.principal, { project, resource: 'project', action: 'read' }) &&
        (!query.name || project.name.includes(query.name)) &&
        matchesQ(q.get('name'), project.name) &&
        (query.public === undefined || String(project.public) === query.public),
    );
    return paginate(request, reply, visible).map((project) => projectView(core.store, project));
  });

  app.post(`${api}/projects`, async (request, reply) => {
    requireSignedIn(request);
    requirePermission(core, request, { resource: 'project', action: 'create' });
    const body = (request.body ?? {}) as ProjectReq;
    if (typeof body.project_name !== 'string')
      throw new HarborFailure(400, 'BAD_REQUEST', 'project_name must be a string');
    let registryId: number | undefined;
    if (body.registry_id !== undefined && body.registry_id !== null && body.registry_id !== 0) {
      if (
        !(request.principal.kind === 'user' && request.principal.admin) &&
        request.principal.kind !== 'robot'
      )
        throw new HarborFailure(403, 'FORBIDDEN', 'only system admins can create proxy cache projects');
      const registry = core.endpoints.get(Number(body.registry_id));
      if (!registry)
        throw new HarborFailure(400, 'BAD_REQUEST', `registry_id: registry ${body.registry_id} not found`);
      if (!PROXY_TYPES.has(registry.type))
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          `registry_id: proxy cache is not supported for registries of type ${registry.type}`,
        );
      registryId = registry.id;
    }
    const metadata = Object.fromEntries(
      Object.entries(body.metadata ?? {}).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string',
      ),
    );
    const project = core.store.createProject({
      name: body.project_name,
      ...(body.public !== undefined ? { public: body.public === true } : {}),
      metadata,
      ownerName: request.principal.name,
      ...(registryId ? { registryId } : {}),
    });
    return created(reply, `${api}/projects/${project.id}`).send();
  });

  app.get(`${api}/projects/:project_name_or_id`, async (request) => {
    const project = projectParam(core, request, (request.params as Params).project_name_or_id!);
    requirePermission(core, request, { project, resource: 'project', action: 'read' });
    return projectView(core.store, project);
  });

  app.get(`${api}/projects/:project_name/repositories`, async (request, reply) => {
    const project = projectParam(core, request, (request.params as Params).project_name!);
    requirePermission(core, request, { project, resource: 'repository', action: 'list' });
    return paginate(request, reply, core.store.repositoriesOf(project.id)).map((repository) =>
      repositoryView(core.store, repository),
    );
  });

  app.get(`${api}/projects/:project_name/repositories/:repository_name`, async (request) => {
    const params = request.params as Params;
    const project = projectParam(core, request, params.project_name!);
    requirePermission(core, request, { project, resource: 'repository', action: 'read' });
    const repository = core.store.repositories.get(
      `${project.name}/${repositoryParam(params.repository_name!)}`,
    );
    if (!repository)
      throw new HarborFailure(
        404,
        'NOT_FOUND',
        `repository ${project.name}/${repositoryParam(params.repository_name!)} not found`,
      );
    return repositoryView(core.store, repository);
  });

  app.get(`${api}/projects/:project_name/repositories/:repository_name/artifacts`, async (request, reply) => {
    const params = request.params as Params;
    const query = request.query as Params;
    const project = projectParam(core, request, params.project_name!);
    requirePermission(core, request, { project, resource: 'artifact', action: 'list' });
    const repository = core.store.repositories.get(
      `${project.name}/${repositoryParam(params.repository_name!)}`,
    );
    if (!repository) return paginate(request, reply, []);
    const q = parseQ(query.q);
    const tags = q.get('tags');
    const children = core.store.childDigests(repository);
    const artifacts = [...repository.artifacts.values()]
      // Harbor lists an index's untagged children under the index, not on their own.
      .filter((artifact) => !children.has(artifact.digest) || artifact.tags.length > 0)
      .filter((artifact) => !tags || artifact.tags.some((tag) => matchesQ(tags, tag.name)))
      .filter((artifact) => matchesQ(q.get('digest'), artifact.digest))
      .sort((a, b) => b.pushTime.getTime() - a.pushTime.getTime() || b.id - a.id);
    return paginate(request, reply, artifacts).map((artifact) =>
      artifactView(core.store, repository, artifact, query.with_tag !== 'false'),
    );
  });

  app.get(
    `${api}/projects/:project_name/repositories/:repository_name/artifacts/:reference`,
    async (request) => {
      const params = request.params as Params;
      const project = projectParam(core, request, params.project_name!);
      requirePermission(core, request, { project, resource: 'artifact', action: 'read' });
      const name = `${project.name}/${repositoryParam(params.repository_name!)}`;
      const reference = params.reference!;
      if (reference.includes(':') && !isDigest(reference))
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          `reference ${reference} is neither a tag nor a valid digest`,
        );
      const found = core.store.resolve(name, reference);
      if (!found) throw new HarborFailure(404, 'NOT_FOUND', `artifact ${name}:${reference} not found`);
      return artifactView(
        core.store,
        found.repository,
        found.artifact,
        (request.query as Params).with_tag !== 'false',
      );
    },
  );

  app.get(
    `${api}/projects/:project_name/repositories/:repository_name/artifacts/:reference/tags`,
    async (request, reply) => {
      const params = request.params as Params;
      const project = projectParam(core, request, params.project_name!);
      requirePermission(core, request, { project, resource: 'tag', action: 'list' });
      const name = `${project.name}/${repositoryParam(params.repository_name!)}`;
      const found = core.store.resolve(name, params.reference!);
      if (!found) throw new HarborFailure(404, 'NOT_FOUND', `artifact ${name}:${params.reference} not found`);
      const view = artifactView(core.store, found.repository, found.artifact);
      return paginate(request, reply, view.tags ?? []);
    },
  );

  app.delete(
    `${api}/projects/:project_name/repositories/:repository_name/artifacts/:reference`,
    async (request) => {
      const params = request.params as Params;
      const project = projectParam(core, request, params.project_name!);
      requirePermission(core, request, { project, resource: 'artifact', action: 'delete' });
      const name = `${project.name}/${repositoryParam(params.repository_name!)}`;
      const found = core.store.resolve(name, params.reference!);
      if (!found) throw new HarborFailure(404, 'NOT_FOUND', `artifact ${name}:${params.reference} not found`);
      const tag = found.artifact.tags[0]?.name;
      core.store.delete(name, found.artifact.digest);
      core.artifactEvent('DELETE_ARTIFACT', name, found.artifact, tag, request.principal.name);
      return {};
    },
  );
}
