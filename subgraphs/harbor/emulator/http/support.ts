/** Helpers shared by the route modules: permissions, parameters, paging, error bodies. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ProjectRecord } from '../artifacts/store.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { Permission, Principal } from '../auth/access.ts';
import type { HarborCore } from '../core.ts';
import type { RequestFaults } from '../faults/faults.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** `METHOD /route/{param}`: what the request counter and fault switches call the route. */
    routeKey: string;
    /** Faults that act on the answer rather than the request. */
    lateFaults: RequestFaults;
  }
}

/** Answers 401 to an anonymous caller and 403 to one who is known but not allowed. */
export function requirePermission(core: HarborCore, request: FastifyRequest, permission: Permission): void {
  if (core.access.can(request.principal, permission)) return;
  if (request.principal.kind === 'anonymous') throw new HarborFailure(401, 'UNAUTHORIZED', 'unauthorized');
  throw new HarborFailure(
    403,
    'FORBIDDEN',
    `${request.principal.name} may not ${permission.action} ${permission.resource}${permission.project ? ` in project ${permission.project.name}` : ''}`,
  );
}

export function requireSignedIn(request: FastifyRequest): void {
  if (request.principal.kind === 'anonymous') throw new HarborFailure(401, 'UNAUTHORIZED', 'unauthorized');
}

/** `project_name_or_id` with Harbor's `X-Is-Resource-Name` rule. */
export function projectParam(core: HarborCore, request: FastifyRequest, value: string): ProjectRecord {
  const isName = String(request.headers['x-is-resource-name'] ?? '').toLowerCase() === 'true';
  const project = core.store.findProject(value, isName);
  if (!project) {
    // Harbor does not tell strangers which private projects exist.
    if (request.principal.kind === 'anonymous') throw new HarborFailure(401, 'UNAUTHORIZED', 'unauthorized');
    throw new HarborFailure(404, 'NOT_FOUND', `project ${value} not found`);
  }
  return project;
}

/**
 * A repository name path parameter. Harbor's router needs `a/b` as `a%252Fb`; a single encoding
 * reaches it as a `/` and no route matches, which we answer the same way.
 */
export function repositoryParam(value: string): string {
  if (value.includes('/'))
    throw new HarborFailure(
      404,
      'NOT_FOUND',
      'no route matches: a repository name containing "/" must be URL-encoded twice (a%252Fb)',
    );
  return decodeURIComponent(value);
}

export function integerParam(value: string, name: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number))
    throw new HarborFailure(400, 'BAD_REQUEST', `${name} must be an integer (got ${value})`);
  return number;
}

/** Harbor's `page` / `page_size` paging, with X-Total-Count and Link headers. */
export function paginate<T>(request: FastifyRequest, reply: FastifyReply, items: T[]): T[] {
  const query = request.query as Record<string, string | undefined>;
  const page = query.page === undefined ? 1 : Number(query.page);
  const size = query.page_size === undefined ? 10 : Number(query.page_size);
  if (!(Number.isInteger(page) && page >= 1))
    throw new HarborFailure(400, 'BAD_REQUEST', `page must be a positive integer (got ${query.page})`);
  if (!(Number.isInteger(size) && size >= 1 && size <= 100))
    throw new HarborFailure(
      400,
      'BAD_REQUEST',
      `page_size must be an integer from 1 to 100 (got ${query.page_size})`,
    );
  reply.header('x-total-count', String(items.length));
  const path = request.url.split('?')[0]!;
  const link = (target: number) => {
    const params = new URLSearchParams(query as Record<string, string>);
    params.set('page', String(target));
    params.set('page_size', String(size));
    return `<${path}?${params}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${link(page - 1)}; rel="prev"`);
  if (page * size < items.length) links.push(`${link(page + 1)}; rel="next"`);
  if (links.length) reply.header('link', links.join(' , '));
  return items.slice((page - 1) * size, page * size);
}

/** Harbor's `q` query: `k=v` exact, `k=~v` fuzzy, comma-separated. */
export function parseQ(q: string | undefined): Map<string, { fuzzy: boolean; value: string }> {
  const result = new Map<string, { fuzzy: boolean; value: string }>();
  if (!q) return result;
  for (const part of q.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new HarborFailure(400, 'BAD_REQUEST', `q: "${part}" must be key=value or key=~value`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1);
    result.set(
      key,
      raw.startsWith('~') ? { fuzzy: true, value: raw.slice(1) } : { fuzzy: false, value: raw },
    );
  }
  return result;
}

export function matchesQ(condition: { fuzzy: boolean; value: string } | undefined, value: string): boolean {
  if (!condition) return true;
  return condition.fuzzy ? value.includes(condition.value) : value === condition.value;
}

export function created(reply: FastifyReply, location: string): FastifyReply {
  return reply.code(201).header('location', location);
}
