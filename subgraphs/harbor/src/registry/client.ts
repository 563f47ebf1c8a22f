/**
 * A client of the OCI distribution API (`/v2/`), as served by Harbor, Docker Hub, GHCR or a
 * plain registry: manifests, blobs, tags, and the token or Basic authentication they ask for.
 */
import type { RetryOptions } from '../harbor/retry.ts';
import { send, TransportError } from '../harbor/retry.ts';
import type { Credentials, Token } from './auth.ts';
import { basicAuthorization, parseChallenge, readTokenResponse } from './auth.ts';
import type { Descriptor, ImageManifest, IndexManifest, Manifest, Platform } from './manifest.ts';
import {
  DEFAULT_PLATFORM,
  digestWithAlgorithmOf,
  imageSize,
  layersSize,
  MANIFEST_ACCEPT,
  ManifestError,
  parseManifest,
  selectPlatform,
} from './manifest.ts';
import { isDigest } from './reference.ts';

/** What a HEAD of a manifest tells without downloading it. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  /** Byte length of the manifest document itself. */
  size: number;
}

export interface FetchedManifest extends ManifestHead {
  bytes: Uint8Array;
  manifest: Manifest;
}

/** An image reduced to one platform, with everything needed to judge a pull. */
export interface ResolvedImage {
  /** Digest of what the reference names: the index for a multi-arch image. */
  digest: string;
  mediaType: string;
  /** Present when the reference named an index; lists every platform it offers. */
  index?: { digest: string; mediaType: string; platforms: Platform[] };
  /** The platform-specific image manifest. */
  manifestDigest: string;
  manifestMediaType: string;
  platform?: Platform;
  config: Descriptor;
  layers: Descriptor[];
  /** Manifest + config + layers, as Harbor counts an image. */
  size: number;
  /** Sum of the layer sizes: the bytes a pull downloads. */
  layersSize: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

/** The registry operations the Harbor worker relies on. */
export interface RegistryApi {
  /** The manifest's digest and type, or undefined when the registry answers 404. */
  headManifest(
    repository: string,
    reference: string,
    options?: RequestOptions,
  ): Promise<ManifestHead | undefined>;
  /** The manifest, its digest checked against its bytes; undefined on 404. */
  getManifest(
    repository: string,
    reference: string,
    options?: RequestOptions,
  ): Promise<FetchedManifest | undefined>;
  /** Follows an index to the wanted platform (amd64/linux by default); undefined on 404. */
  resolveImage(
    repository: string,
    reference: string,
    options?: RequestOptions & { platform?: Platform },
  ): Promise<ResolvedImage | undefined>;
  /** The blob's size, or undefined when absent. */
  headBlob(repository: string, digest: string, options?: RequestOptions): Promise<number | undefined>;
  getBlob(repository: string, digest: string, options?: RequestOptions): Promise<Uint8Array | undefined>;
  /** Uploads a blob (skipped when already there) and returns its digest. */
  pushBlob(repository: string, bytes: Uint8Array, options?: RequestOptions): Promise<string>;
  /** Stores a manifest under a tag or its digest and returns the digest. */
  pushManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options?: RequestOptions,
  ): Promise<string>;
  listTags(repository: string, options?: RequestOptions): Promise<string[]>;
  listRepositories(options?: RequestOptions): Promise<string[]>;
}

export type RegistryErrorCode =
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NAME_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'PLATFORM_NOT_FOUND'
  | 'TOOMANYREQUESTS'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'UNKNOWN'
  | (string & {});

/** A registry failure: an error answer (OCI `errors[]` body) or a check of ours that failed. */
export class RegistryError extends Error {
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    /** HTTP status, or 0 when there was no answer or the failure is ours. */
    readonly status: number,
    readonly detail?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

export interface RegistryClientOptions {
  /** e.g. `https://harbor.example` or `http://127.0.0.1:5000`; the client adds `/v2/`. */
  baseUrl: string;
  /** Basic credentials, sent to a Basic challenge or to the token service of a Bearer one. */
  credentials?: Credentials;
  retry?: RetryOptions;
  /**
   * Check that manifest and blob bytes hash to their digest (default true). Turn off only for
   * stand-in registries that declare digests they cannot produce.
   */
  verifyDigests?: boolean;
  fetch?: typeof fetch;
}

interface Call {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST';
  path: string;
  /** `pull` or `pull,push` on the repository; undefined for the catalog. */
  scope: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  idempotent?: boolean;
  signal?: AbortSignal;
}

function repositoryPath(repository: string): string {
  // Repository names are path segments already; only the characters of a component need escaping.
  return repository
    .split('/')
    .map((part) => encodeURIComponent(part))
    .join('/');
}

function statusCode(status: number): RegistryErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 429) return 'TOOMANYREQUESTS';
  return 'UNKNOWN';
}

export class RegistryClient implements RegistryApi {
  private readonly baseUrl: string;
  private readonly tokens = new Map<string, Token>();
  /** Set once a registry has asked for Basic: later calls send it up front. */
  private basicPreferred = false;
  private readonly verifyDigests: boolean;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: RegistryClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    if (!/^https?:\/\//.test(this.baseUrl))
      throw new TypeError(`baseUrl must be an http(s) URL (got ${options.baseUrl})`);
    this.verifyDigests = options.verifyDigests ?? true;
    this.fetchImpl = options.fetch ?? fetch;
  }

  async headManifest(
    repository: string,
    reference: string,
    options: RequestOptions = {},
  ): Promise<ManifestHead | undefined> {
    const response = await this.call({
      method: 'HEAD',
      path: `/v2/${repositoryPath(repository)}/manifests/${encodeURIComponent(reference)}`,
      scope: `repository:${repository}:pull`,
      headers: { accept: MANIFEST_ACCEPT },
      signal: options.signal,
    });
    if (response.status === 404) return undefined;
    await this.expectOk(response, 'HEAD manifest', `${repository}:${reference}`);
    const digest = response.headers.get('docker-content-digest');
    // Some registries leave the digest out of HEAD answers; the body then has to be hashed.
    if (!digest) {
      const fetched = await this.getManifest(repository, reference, options);
      return fetched && { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.size };
    }
    if (isDigest(reference) && digest !== reference)
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${repository}@${reference}: the registry answered with digest ${digest}`,
        response.status,
      );
    return {
      digest,
      mediaType: (response.headers.get('content-type') ?? '').split(';')[0]!.trim(),
      size: Number(response.headers.get('content-length') ?? 0),
    };
  }

  async getManifest(
    repository: string,
    reference: string,
    options: RequestOptions = {},
  ): Promise<FetchedManifest | undefined> {
    const response = await this.call({
      method: 'GET',
      path: `/v2/${repositoryPath(repository)}/manifests/${encodeURIComponent(reference)}`,
      scope: `repository:${repository}:pull`,
      headers: { accept: MANIFEST_ACCEPT },
      signal: options.signal,
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    await this.expectOk(response, 'GET manifest', `${repository}:${reference}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const headerDigest = response.headers.get('docker-content-digest') ?? undefined;
    const expected = isDigest(reference) ? reference : headerDigest;
    const computed = digestWithAlgorithmOf(expected ?? 'sha256:', bytes);
    if (this.verifyDigests && expected !== undefined && computed !== expected)
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${repository}:${reference}: manifest bytes hash to ${computed}, not ${expected}`,
        response.status,
      );
    let manifest: Manifest;
    try {
      manifest = parseManifest(bytes, response.headers.get('content-type') ?? undefined);
    } catch (error) {
      if (error instanceof ManifestError)
        throw new RegistryError(
          'MANIFEST_INVALID',
          `${repository}:${reference}: ${error.message}`,
          response.status,
          undefined,
          { cause: error },
        );
      throw error;
    }
    return {
      digest: expected ?? computed,
      mediaType: manifest.mediaType,
      size: bytes.byteLength,
      bytes,
      manifest,
    };
  }

  async resolveImage(
    repository: string,
    reference: string,
    options: RequestOptions & { platform?: Platform } = {},
  ): Promise<ResolvedImage | undefined> {
    const top = await this.getManifest(repository, reference, options);
    if (!top) return undefined;
    if (top.manifest.kind === 'image') return this.describe(top.digest, top.size, top.manifest);

    const index: IndexManifest = top.manifest;
    const wanted = options.platform ?? DEFAULT_PLATFORM;
    const entry = selectPlatform(index, wanted);
    const platforms = index.manifests.flatMap((m) =>
      m.platform && m.platform.os !== 'unknown' ? [m.platform] : [],
    );
    if (!entry)
      throw new RegistryError(
        'PLATFORM_NOT_FOUND',
        `${repository}:${reference}: no manifest for ${wanted.os}/${wanted.architecture}${wanted.variant ? `/${wanted.variant}` : ''}; ` +
          `the index offers ${platforms.map((p) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`).join(', ') || 'none'}`,
        0,
      );
    const child = await this.getManifest(repository, entry.digest, options);
    if (!child)
      throw new RegistryError(
        'MANIFEST_UNKNOWN',
        `${repository}: index ${top.digest} names ${entry.digest}, which the registry does not have`,
        404,
      );
    if (child.manifest.kind !== 'image')
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${repository}@${entry.digest}: an index entry must be an image manifest, not another index`,
        0,
      );
    return {
      ...this.describe(child.digest, child.size, child.manifest),
      digest: top.digest,
      mediaType: top.mediaType,
      index: { digest: top.digest, mediaType: top.mediaType, platforms },
      ...(entry.platform ? { platform: entry.platform } : {}),
    };
  }

  private describe(digest: string, bytes: number, manifest: ImageManifest): ResolvedImage {
    return {
      digest,
      mediaType: manifest.mediaType,
      manifestDigest: digest,
      manifestMediaType: manifest.mediaType,
      config: manifest.config,
      layers: manifest.layers,
      size: imageSize(bytes, manifest),
      layersSize: layersSize(manifest),
    };
  }

  async headBlob(
    repository: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<number | undefined> {
    const response = await this.call({
      method: 'HEAD',
      path: `/v2/${repositoryPath(repository)}/blobs/${digest}`,
      scope: `repository:${repository}:pull`,
      signal: options.signal,
    });
    if (response.status === 404) return undefined;
    await this.expectOk(response, 'HEAD blob', `${repository}@${digest}`);
    return Number(response.headers.get('content-length') ?? 0);
  }

  async getBlob(
    repository: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<Uint8Array | undefined> {
    const response = await this.call({
      method: 'GET',
      path: `/v2/${repositoryPath(repository)}/blobs/${digest}`,
      scope: `repository:${repository}:pull`,
      signal: options.signal,
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    await this.expectOk(response, 'GET blob', `${repository}@${digest}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const computed = digestWithAlgorithmOf(digest, bytes);
    if (this.verifyDigests && computed !== digest)
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${repository}@${digest}: blob bytes hash to ${computed}`,
        response.status,
      );
    return bytes;
  }

  async pushBlob(repository: string, bytes: Uint8Array, options: RequestOptions = {}): Promise<string> {
    const digest = digestWithAlgorithmOf('sha256:', bytes);
    const scope = `repository:${repository}:pull,push`;
    const existing = await this.call({
      method: 'HEAD',
      path: `/v2/${repositoryPath(repository)}/blobs/${digest}`,
      scope,
      signal: options.signal,
    });
    if (existing.ok) return digest;
    // Not idempotent: a repeated POST would open a second upload session.
    const started = await this.call({
      method: 'POST',
      path: `/v2/${repositoryPath(repository)}/blobs/uploads/`,
      scope,
      idempotent: false,
      signal: options.signal,
    });
    await this.expectOk(started, 'POST blob upload', repository);
    await started.body?.cancel();
    const location = started.headers.get('location');
    if (!location)
      throw new RegistryError(
        'UNKNOWN',
        `${repository}: the upload answer has no Location header`,
        started.status,
      );
    const target = new URL(location, `${this.baseUrl}/`);
    target.searchParams.set('digest', digest);
    const finished = await this.call({
      method: 'PUT',
      path: target.toString(),
      scope,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      // Completing an upload session twice is refused, not duplicated.
      idempotent: true,
      signal: options.signal,
    });
    await this.expectOk(finished, 'PUT blob', `${repository}@${digest}`);
    await finished.body?.cancel();
    return digest;
  }

  async pushManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: RequestOptions = {},
  ): Promise<string> {
    const response = await this.call({
      method: 'PUT',
      path: `/v2/${repositoryPath(repository)}/manifests/${encodeURIComponent(reference)}`,
      scope: `repository:${repository}:pull,push`,
      headers: { 'content-type': mediaType },
      body: bytes,
      idempotent: true,
      signal: options.signal,
    });
    await this.expectOk(response, 'PUT manifest', `${repository}:${reference}`);
    await response.body?.cancel();
    return response.headers.get('docker-content-digest') ?? digestWithAlgorithmOf('sha256:', bytes);
  }

  async listTags(repository: string, options: RequestOptions = {}): Promise<string[]> {
    return this.paginate(
      `/v2/${repositoryPath(repository)}/tags/list`,
      `repository:${repository}:pull`,
      'tags',
      options,
    );
  }

  async listRepositories(options: RequestOptions = {}): Promise<string[]> {
    return this.paginate('/v2/_catalog', 'registry:catalog:*', 'repositories', options);
  }

  /** Follows `Link: <...>; rel="next"` until the list ends. */
  private async paginate(
    path: string,
    scope: string,
    field: 'tags' | 'repositories',
    options: RequestOptions,
  ): Promise<string[]> {
    const items: string[] = [];
    let next: string | undefined = path;
    while (next) {
      const response = await this.call({ method: 'GET', path: next, scope, signal: options.signal });
      if (response.status === 404 && field === 'tags') {
        await response.body?.cancel();
        return [];
      }
      await this.expectOk(response, 'GET', next);
      const body = (await response.json()) as Record<string, unknown>;
      const page = body[field];
      if (page !== null && page !== undefined && !Array.isArray(page))
        throw new RegistryError('UNKNOWN', `GET ${next}: ${field} must be an array`, response.status);
      items.push(
        ...((page as unknown[] | null) ?? []).filter((item): item is string => typeof item === 'string'),
      );
      next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get('link') ?? '')?.[1];
    }
    return items;
  }

  private async call(call: Call): Promise<Response> {
    const url = /^https?:\/\//.test(call.path) ? call.path : `${this.baseUrl}${call.path}`;
    const attempt = async (authorization: string | undefined) => {
      try {
        return await send(
          {
            method: call.method,
            url,
            headers: { ...call.headers, ...(authorization ? { authorization } : {}) },
            ...(call.body ? { body: call.body } : {}),
            idempotent: call.idempotent ?? call.method !== 'POST',
            ...(call.signal ? { signal: call.signal } : {}),
          },
          this.options.retry,
          this.fetchImpl,
        );
      } catch (error) {
        if (error instanceof TransportError)
          throw new RegistryError(
            error.kind === 'timeout' ? 'TIMEOUT' : 'NETWORK',
            error.message,
            0,
            undefined,
            { cause: error },
          );
        throw error;
      }
    };

    const response = await attempt(this.cachedAuthorization(call.scope));
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers.get('www-authenticate'));
    let authorization: string | undefined;
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      authorization = `Bearer ${await this.fetchToken(challenge.params, call.scope, call.signal)}`;
    } else if (challenge?.scheme === 'basic' && this.options.credentials && !this.basicPreferred) {
      this.basicPreferred = true;
      authorization = basicAuthorization(this.options.credentials);
    }
    if (!authorization) return response;
    await response.body?.cancel();
    return attempt(authorization);
  }

  private cachedAuthorization(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token && token.expiresAt > Date.now()) return `Bearer ${token.value}`;
    if (this.basicPreferred && this.options.credentials) return basicAuthorization(this.options.credentials);
    return undefined;
  }

  private async fetchToken(
    params: Record<string, string>,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const realm = new URL(params.realm!);
    if (params.service) realm.searchParams.set('service', params.service);
    // The challenge's own scope says what this registry wants for the call; ours is the fallback.
    realm.searchParams.set('scope', params.scope ?? scope);
    let response: Response;
    try {
      response = await send(
        {
          method: 'GET',
          url: realm.toString(),
          headers: this.options.credentials
            ? { authorization: basicAuthorization(this.options.credentials) }
            : {},
          idempotent: true,
          ...(signal ? { signal } : {}),
        },
        this.options.retry,
        this.fetchImpl,
      );
    } catch (error) {
      if (error instanceof TransportError)
        throw new RegistryError(
          error.kind === 'timeout' ? 'TIMEOUT' : 'NETWORK',
          `token service: ${error.message}`,
          0,
          undefined,
          { cause: error },
        );
      throw error;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new RegistryError(
        statusCode(response.status),
        `token service ${realm.origin}${realm.pathname} refused ${scope} (HTTP ${response.status})`,
        response.status,
      );
    }
    const token = readTokenResponse(await response.json().catch(() => undefined));
    if (!token)
      throw new RegistryError(
        'UNKNOWN',
        `token service ${realm.origin}${realm.pathname} answered without a token`,
        response.status,
      );
    this.tokens.set(scope, token);
    return token.value;
  }

  /** Turns an error answer into a RegistryError carrying the registry's own code and message. */
  private async expectOk(response: Response, what: string, subject: string): Promise<void> {
    if (response.ok) return;
    let code = statusCode(response.status);
    let message = `HTTP ${response.status}`;
    let detail: unknown;
    const text = await response.text().catch(() => '');
    try {
      const body = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
      const first = body.errors?.[0];
      if (first?.code) code = first.code;
      if (first?.message) message = first.message;
      detail = first?.detail;
    } catch {
      // Proxies in front of registries answer 502/503 with HTML; the status says enough.
    }
    throw new RegistryError(code, `${what} ${subject}: ${message}`, response.status, detail);
  }
}
