/**
 * The OCI distribution API Harbor serves at `/v2/` (manifests, blobs, uploads, tags, catalog)
 * and its token service at `/service/token`. Proxy-cache projects answer through ProxyCache.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ManifestError, sha256Digest } from '../../src/registry/manifest.ts';
import { isDigest } from '../../src/registry/reference.ts';
import type { StoredManifest } from '../artifacts/content.ts';
import { storedFromBytes } from '../artifacts/content.ts';
import type { ProjectRecord } from '../artifacts/store.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { HarborCore } from '../core.ts';

/** The parts of a `/v2/...` path. */
export type OciPath =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload'; name: string; session: string }
  | { kind: 'tags'; name: string };

const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

export function parseOciPath(path: string): OciPath | undefined {
  const rest = decodeURIComponent(path.replace(/^\/v2\/?/, ''));
  if (rest === '') return { kind: 'base' };
  if (rest === '_catalog') return { kind: 'catalog' };
  let match: RegExpExecArray | null;
  if ((match = /^(.+)\/manifests\/([^/]+)$/.exec(rest)) && NAME.test(match[1]!))
    return { kind: 'manifest', name: match[1]!, reference: match[2]! };
  if ((match = /^(.+)\/blobs\/uploads\/([^/]*)$/.exec(rest)) && NAME.test(match[1]!))
    return { kind: 'upload', name: match[1]!, session: match[2]! };
  if ((match = /^(.+)\/blobs\/([^/]+)$/.exec(rest)) && NAME.test(match[1]!))
    return { kind: 'blob', name: match[1]!, digest: match[2]! };
  if ((match = /^(.+)\/tags\/list$/.exec(rest)) && NAME.test(match[1]!))
    return { kind: 'tags', name: match[1]! };
  return undefined;
}

/** The counter's name for a `/v2` request, parameters elided. */
export function ociRouteKey(method: string, path: string): string {
  const parsed = parseOciPath(path);
  const route = {
    base: '/v2/',
    catalog: '/v2/_catalog',
    manifest: '/v2/{name}/manifests/{reference}',
    blob: '/v2/{name}/blobs/{digest}',
    upload: '/v2/{name}/blobs/uploads/{session}',
    tags: '/v2/{name}/tags/list',
  }[parsed?.kind ?? 'base'];
  return `${method} ${parsed ? route : '/v2/*'}`;
}

/** A distribution-spec error; the server's error handler turns it into `{errors:[...]}`. */
export class OciFailure extends HarborFailure {
  constructor(
    status: number,
    code: string,
    message: string,
    /** The scope to name in the Bearer challenge of a 401. */
    readonly scope?: string,
  ) {
    super(status, code, message);
  }
}

export function challenge(core: HarborCore, scope?: string): string {
  return `Bearer realm="${core.externalUrl}/service/token",service="harbor-registry"${scope ? `,scope="${scope}"` : ''}`;
}

export function ociRoutes(app: FastifyInstance, core: HarborCore): void {
  const uploads = new Map<string, { name: string; chunks: Buffer[] }>();

  /** Checks access to a repository; a missing project is NAME_UNKNOWN once the caller is known. */
  function authorize(
    request: FastifyRequest,
    name: string,
    action: 'pull' | 'push' | 'delete',
  ): ProjectRecord {
    const scope = `repository:${name}:${action === 'pull' ? 'pull' : 'pull,push'}`;
    const project = core.store.projectOf(name);
    const header = request.headers.authorization;
    const allowed = project
      ? core.access.isBearer(header)
        ? core.access.tokenAllows(header, name, action)
        : core.access.can(request.principal, { project, resource: 'repository', action })
      : false;
    if (allowed && project) return project;
    if (request.principal.kind === 'anonymous' || core.access.isBearer(header))
      throw new OciFailure(401, 'UNAUTHORIZED', 'authentication required', scope);
    if (!project)
      throw new OciFailure(
        404,
        'NAME_UNKNOWN',
        `repository name not known to registry: project ${name.split('/')[0]} not found`,
      );
    throw new OciFailure(
      403,
      'DENIED',
      `requested access to the resource is denied: ${request.principal.name} may not ${action} ${name}`,
    );
  }

  function sendManifest(reply: FastifyReply, manifest: StoredManifest, method: string): FastifyReply {
    reply
      .header('content-type', manifest.mediaType)
      .header('docker-content-digest', manifest.digest)
      .header('etag', `"${manifest.digest}"`)
      .header('content-length', String(manifest.bytes.byteLength));
    return method === 'HEAD' ? reply.send() : reply.send(manifest.bytes);
  }

  async function manifest(
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    reference: string,
  ): Promise<FastifyReply> {
    const method = request.method;
    if (method === 'PUT') return putManifest(request, reply, name, reference);
    if (method !== 'GET' && method !== 'HEAD')
      throw new OciFailure(405, 'UNSUPPORTED', `${method} is not supported on manifests`);
    const project = authorize(request, name, 'pull');
    if (reference.includes(':') && !isDigest(reference))
      throw new OciFailure(
        400,
        'DIGEST_INVALID',
        `provided digest did not match uploaded content: ${reference} is not a valid digest`,
      );
    const operator = request.principal.name || 'anonymous';
    if (project.registryId) {
      const remote = name.slice(project.name.length + 1);
      const registry = core.endpoints.get(project.registryId);
      // Harbor's defaultLibrary: Docker Hub official images live under library/.
      if (registry?.type === 'docker-hub' && !remote.includes('/'))
        return reply.redirect(`/v2/${project.name}/library/${remote}/manifests/${reference}`, 301);
      const answer = await core.proxy.manifest(project, name, reference, method, operator);
      if (!answer) throw new OciFailure(404, 'MANIFEST_UNKNOWN', `manifest unknown: ${name}:${reference}`);
      if (answer.kind === 'head')
        return reply
          .header('content-type', answer.mediaType)
          .header('docker-content-digest', answer.digest)
          .header('content-length', String(answer.size))
          .send();
      if (answer.kind === 'local' && method === 'GET') {
        core.store.touch(name, answer.artifact, isDigest(reference) ? undefined : reference);
        core.artifactEvent(
          'PULL_ARTIFACT',
          name,
          answer.artifact,
          isDigest(reference) ? undefined : reference,
          operator,
        );
      }
      return sendManifest(reply, answer.manifest, method);
    }
    const found = core.store.resolve(name, reference);
    if (!found) throw new OciFailure(404, 'MANIFEST_UNKNOWN', `manifest unknown: ${name}:${reference}`);
    if (method === 'GET') {
      core.store.touch(name, found.artifact, isDigest(reference) ? undefined : reference);
      core.artifactEvent(
        'PULL_ARTIFACT',
        name,
        found.artifact,
        isDigest(reference) ? undefined : reference,
        operator,
      );
    }
    return sendManifest(reply, found.manifest, method);
  }

  async function putManifest(
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    reference: string,
  ): Promise<FastifyReply> {
    const project = authorize(request, name, 'push');
    if (project.registryId)
      throw new OciFailure(403, 'DENIED', `can not push artifact to a proxy project: ${project.name}`);
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.byteLength === 0)
      throw new OciFailure(400, 'MANIFEST_INVALID', 'manifest invalid: the body is empty');
    let stored: StoredManifest;
    try {
      stored = storedFromBytes(body, request.headers['content-type']);
    } catch (error) {
      if (error instanceof ManifestError)
        throw new OciFailure(400, 'MANIFEST_INVALID', `manifest invalid: ${error.message}`);
      throw error;
    }
    if (isDigest(reference) && reference !== stored.digest)
      throw new OciFailure(
        400,
        'DIGEST_INVALID',
        `provided digest did not match uploaded content: ${reference} is not ${stored.digest}`,
      );
    if (!isDigest(reference) && !/^[\w][\w.-]{0,127}$/.test(reference))
      throw new OciFailure(400, 'TAG_INVALID', `manifest tag did not match URI: ${reference}`);
    if (stored.manifest.kind === 'image') {
      for (const blob of [stored.manifest.config, ...stored.manifest.layers])
        if (!core.content.blobs.has(blob.digest))
          throw new OciFailure(400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${blob.digest}`);
      stored.attrs = core.content.attrsFromConfig(stored.manifest);
    } else {
      for (const child of stored.manifest.manifests)
        if (!core.store.resolve(name, child.digest))
          throw new OciFailure(
            400,
            'MANIFEST_BLOB_UNKNOWN',
            `manifest ${child.digest} named by the index is not in ${name}`,
          );
    }
    core.content.addManifest(stored);
    const tag = isDigest(reference) ? undefined : reference;
    const { artifact } = core.store.put(name, stored, tag);
    // Harbor announces every push, also of a tag onto an artifact it already had.
    core.artifactEvent('PUSH_ARTIFACT', name, artifact, tag, request.principal.name);
    return reply
      .code(201)
      .header('location', `/v2/${name}/manifests/${stored.digest}`)
      .header('docker-content-digest', stored.digest)
      .send();
  }

  async function blob(
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    digest: string,
  ): Promise<FastifyReply> {
    if (request.method !== 'GET' && request.method !== 'HEAD')
      throw new OciFailure(405, 'UNSUPPORTED', `${request.method} is not supported on blobs`);
    const project = authorize(request, name, 'pull');
    if (!isDigest(digest)) throw new OciFailure(400, 'DIGEST_INVALID', `${digest} is not a valid digest`);
    let record = core.content.blobs.get(digest);
    if (!record && project.registryId) {
      const bytes = await core.endpoints
        .upstream(project.registryId)
        .blob(name.slice(project.name.length + 1), digest)
        .catch(() => undefined);
      if (bytes) record = { digest, size: bytes.byteLength, bytes };
    }
    if (!record) throw new OciFailure(404, 'BLOB_UNKNOWN', `blob unknown to registry: ${digest}`);
    reply
      .header('docker-content-digest', digest)
      .header('content-length', String(record.size))
      .header('content-type', 'application/octet-stream');
    if (request.method === 'HEAD') return reply.send();
    if (!record.bytes)
      throw new OciFailure(
        405,
        'UNSUPPORTED',
        `the emulator keeps only the size of layer ${digest}, not its bytes`,
      );
    return reply.send(record.bytes);
  }

  function finishUpload(
    name: string,
    bytes: Buffer,
    digest: string | undefined,
    reply: FastifyReply,
  ): FastifyReply {
    if (!digest || !isDigest(digest))
      throw new OciFailure(400, 'DIGEST_INVALID', 'the digest query parameter must be a valid digest');
    const actual = sha256Digest(bytes);
    if (actual !== digest)
      throw new OciFailure(
        400,
        'DIGEST_INVALID',
        `provided digest did not match uploaded content: ${digest} is not ${actual}`,
      );
    core.content.addBlob({ digest, size: bytes.byteLength, bytes });
    return reply
      .code(201)
      .header('location', `/v2/${name}/blobs/${digest}`)
      .header('docker-content-digest', digest)
      .header('content-length', '0')
      .send();
  }

  async function upload(
    request: FastifyRequest,
    reply: FastifyReply,
    name: string,
    session: string,
  ): Promise<FastifyReply> {
    const project = authorize(request, name, 'push');
    if (project.registryId)
      throw new OciFailure(403, 'DENIED', `can not push artifact to a proxy project: ${project.name}`);
    const query = request.query as Record<string, string | undefined>;
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (request.method === 'POST' && session === '') {
      if (query.mount && core.content.blobs.has(query.mount))
        return reply
          .code(201)
          .header('location', `/v2/${name}/blobs/${query.mount}`)
          .header('docker-content-digest', query.mount)
          .send();
      if (query.digest) return finishUpload(name, body, query.digest, reply);
      const id = randomUUID();
      uploads.set(id, { name, chunks: [] });
      return reply
        .code(202)
        .header('location', `/v2/${name}/blobs/uploads/${id}`)
        .header('docker-upload-uuid', id)
        .header('range', '0-0')
        .header('content-length', '0')
        .send();
    }
    const state = uploads.get(session);
    if (!state || state.name !== name)
      throw new OciFailure(404, 'BLOB_UPLOAD_UNKNOWN', `blob upload unknown to registry: ${session}`);
    if (body.byteLength) state.chunks.push(body);
    const size = state.chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    if (request.method === 'PATCH')
      return reply
        .code(202)
        .header('location', `/v2/${name}/blobs/uploads/${session}`)
        .header('docker-upload-uuid', session)
        .header('range', `0-${Math.max(0, size - 1)}`)
        .send();
    if (request.method === 'PUT') {
      uploads.delete(session);
      return finishUpload(name, Buffer.concat(state.chunks), query.digest, reply);
    }
    if (request.method === 'DELETE') {
      uploads.delete(session);
      return reply.code(204).send();
    }
    throw new OciFailure(405, 'UNSUPPORTED', `${request.method} is not supported on uploads`);
  }

  /** The `n` / `last` paging of the distribution spec, with a Link header to the next page. */
  function listPage(request: FastifyRequest, reply: FastifyReply, items: string[], path: string): string[] {
    const query = request.query as Record<string, string | undefined>;
    const sorted = [...items].sort();
    const start = query.last ? sorted.findIndex((item) => item > query.last!) : 0;
    const from = start < 0 ? sorted.length : start;
    const n = query.n ? Number(query.n) : sorted.length;
    if (!(Number.isInteger(n) && n >= 0))
      throw new OciFailure(400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested');
    const page = sorted.slice(from, from + n);
    if (from + n < sorted.length && page.length)
      reply.header('link', `<${path}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`);
    return page;
  }

  app.register(async (scope) => {
    // Manifests and blobs must reach the handlers as the exact bytes sent, whatever their type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: 1024 * 1024 * 1024 },
      (_request, body, done) => done(null, body),
    );

    scope.route({
      method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
      url: '/v2/*',
      handler: async (request, reply) => {
        const path = request.url.split('?')[0]!;
        const parsed = parseOciPath(path);
        if (!parsed) throw new OciFailure(404, 'NAME_INVALID', `invalid repository name or path: ${path}`);
        switch (parsed.kind) {
          case 'base':
            if (request.principal.kind === 'anonymous')
              throw new OciFailure(401, 'UNAUTHORIZED', 'authentication required');
            return reply.header('docker-distribution-api-version', 'registry/2.0').send({});
          case 'catalog': {
            const admin = request.principal.kind === 'user' && request.principal.admin;
            if (!admin) {
              if (request.principal.kind === 'anonymous')
                throw new OciFailure(401, 'UNAUTHORIZED', 'authentication required', 'registry:catalog:*');
              throw new OciFailure(403, 'DENIED', `${request.principal.name} may not list the catalog`);
            }
            return {
              repositories: listPage(request, reply, [...core.store.repositories.keys()], '/v2/_catalog'),
            };
          }
          case 'manifest':
            return manifest(request, reply, parsed.name, parsed.reference);
          case 'blob':
            return blob(request, reply, parsed.name, parsed.digest);
          case 'upload':
            return upload(request, reply, parsed.name, parsed.session);
          case 'tags': {
            authorize(request, parsed.name, 'pull');
            const repository = core.store.repositories.get(parsed.name);
            if (!repository)
              throw new OciFailure(
                404,
                'NAME_UNKNOWN',
                `repository name not known to registry: ${parsed.name}`,
              );
            const tags = [...repository.artifacts.values()].flatMap((artifact) =>
              artifact.tags.map((tag) => tag.name),
            );
            return {
              name: parsed.name,
              tags: listPage(request, reply, tags, `/v2/${parsed.name}/tags/list`),
            };
          }
        }
      },
    });
  });

  app.get('/service/token', async (request, reply) => {
    if (request.principal.kind !== 'anonymous' && core.access.isBearer(request.headers.authorization))
      throw new HarborFailure(401, 'UNAUTHORIZED', 'the token service takes Basic credentials');
    const query = request.query as Record<string, string | string[] | undefined>;
    const scopes = ([] as string[])
      .concat(query.scope ?? [])
      .flatMap((scope) => scope.split(' '))
      .filter(Boolean);
    const { token, expiresIn } = core.access.issueToken(request.principal, scopes, (name) =>
      core.store.projectByName(name),
    );
    return reply.send({
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date().toISOString(),
    });
  });
}
