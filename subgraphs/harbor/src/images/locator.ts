/**
 * Where a step's image is: already in the local Harbor (under any of its locations, checked
 * against the step's digest), or at a source registry it can be copied from, with its digest and
 * size; or nowhere, or with the wrong digest.
 *
 * A location maps to local repositories: one on the local Harbor itself is used as it is; one
 * on another registry lands in the proxy-cache project of that registry (`<proxy>/<repository>`)
 * or, by replication, in the replication project (`<project>/<repository>`).
 */
import type { HarborApi } from '../harbor/index.ts';
import type { Project } from '../harbor/types.ts';
import type { ImageReference, RegistryApi } from '../registry/index.ts';
import {
  canonicalRegistry,
  ImageReferenceError,
  isDigest,
  parseImageReference,
  RegistryClient,
  registryBaseUrl,
} from '../registry/index.ts';
import type { CopyMode, HarborWorkerConfig } from '../config.ts';

export interface ImageSpec {
  locations: string[];
  digest?: string | undefined;
}

/** How a local copy is (or would be) made. */
export type CopyMethod = 'replication' | 'proxy-cache';

/** A repository of the local Harbor an image may be in or be copied to. */
export interface LocalTarget {
  /** `project/repository`. */
  repository: string;
  /** How it gets there; undefined when the location already names the local Harbor. */
  method?: CopyMethod;
}

interface Found {
  location: string;
  ref: ImageReference;
  /** The source registry host, as history records it. */
  registry: string;
  digest: string;
  sizeBytes: number | undefined;
}

export type Lookup =
  | (Found & { kind: 'local'; localRepository: string; localReference: string })
  | (Found & { kind: 'remote'; target: LocalTarget & { method: CopyMethod } })
  | { kind: 'unavailable'; reference: string; message: string };

/** Calls to Harbor and to registries, counted by operation and outcome. */
export type Track = <T>(operation: string, call: () => Promise<T>) => Promise<T>;

const UPSTREAM_RETRY = { attempts: 2, timeoutMs: 10_000 };

/** Splits `project/rest` for the Harbor API. */
export function splitRepository(repository: string): { project: string; name: string } {
  const slash = repository.indexOf('/');
  return { project: repository.slice(0, slash), name: repository.slice(slash + 1) };
}

export class ImageLocator {
  private readonly upstreamClients = new Map<string, RegistryApi>();
  private readonly harborRegistry: RegistryApi;
  private proxies: { at: number; byHost: Map<string, string> } | undefined;

  constructor(
    private readonly harbor: HarborApi,
    private readonly config: HarborWorkerConfig,
    private readonly track: Track,
  ) {
    this.harborRegistry = new RegistryClient({
      baseUrl: config.harbor.url,
      credentials: { username: config.harbor.username, password: config.harbor.password },
      verifyDigests: config.verifyDigests,
    });
  }

  /** The base URL the worker (and a replication endpoint) reaches a source registry at. */
  upstreamUrl(host: string): string {
    return this.config.upstreamUrls[host] ?? registryBaseUrl(host);
  }

  /** The registry client for the local Harbor's `/v2/` API (proxy-cache pulls go through it). */
  get localRegistry(): RegistryApi {
    return this.harborRegistry;
  }

  localReference(repository: string, digest: string): string {
    return `${this.config.harbor.registryHost}/${repository}@${digest}`;
  }

  async locate(spec: ImageSpec): Promise<Lookup> {
    const first = spec.locations[0] ?? '';
    if (spec.locations.length === 0)
      return { kind: 'unavailable', reference: '', message: 'image.locations is empty: no image to check' };
    const refs: { location: string; ref: ImageReference }[] = [];
    for (const location of spec.locations) {
      try {
        refs.push({ location, ref: parseImageReference(location) });
      } catch (error) {
        if (error instanceof ImageReferenceError)
          return { kind: 'unavailable', reference: location, message: error.message };
        throw error;
      }
    }
    const expected = spec.digest;
    // Harbor takes any artifact reference as a tag or a digest and refuses one that is neither.
    if (expected !== undefined && !isDigest(expected))
      return {
        kind: 'unavailable',
        reference: first,
        message: `image.digest ${JSON.stringify(expected.slice(0, 100))} is not a content digest (sha256:<64 hex digits>)`,
      };
    for (const { location, ref } of refs) {
      if (expected && ref.digest && ref.digest !== expected)
        return {
          kind: 'unavailable',
          reference: location,
          message: `digest mismatch: location ${location} pins ${ref.digest}, but image.digest is ${expected}`,
        };
    }

    // Local first: a copy already in Harbor costs nothing.
    const targets = new Map<string, LocalTarget[]>();
    for (const { location, ref } of refs) {
      const candidates = await this.targets(ref);
      targets.set(location, candidates);
      for (const target of candidates) {
        const wanted = expected ?? ref.digest ?? ref.tag!;
        const { project, name } = splitRepository(target.repository);
        const artifact = await this.track('harbor.getArtifact', () =>
          this.harbor.getArtifact(project, name, wanted),
        );
        if (artifact)
          return {
            kind: 'local',
            location,
            ref,
            registry: ref.registry,
            digest: artifact.digest,
            sizeBytes: artifact.size,
            localRepository: target.repository,
            localReference: this.localReference(target.repository, artifact.digest),
          };
      }
    }

    // Then the sources, in the order the step lists them.
    const problems: string[] = [];
    let mismatch: string | undefined;
    for (const { location, ref } of refs) {
      const target = targets
        .get(location)!
        .find((t): t is LocalTarget & { method: CopyMethod } => !!t.method);
      if (!target) {
        problems.push(
          ref.registry === this.config.harbor.registryHost
            ? `${location} is not in the local Harbor`
            : `${location} cannot be copied: HARBOR_COPY_MODE=${this.config.copyMode} and no proxy-cache project serves ${ref.registry}`,
        );
        continue;
      }
      let remote: { digest: string; digests: string[]; sizeBytes: number | undefined } | undefined;
      try {
        remote = await this.inspectRemote(ref);
      } catch (error) {
        problems.push(`${location}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      if (!remote) {
        problems.push(`${location} was not found at ${ref.registry}`);
        continue;
      }
      if (expected && !remote.digests.includes(expected)) {
        mismatch ??= `digest mismatch: ${location} has digest ${remote.digest}, but the step requires ${expected}`;
        continue;
      }
      return {
        kind: 'remote',
        location,
        ref,
        registry: ref.registry,
        digest: expected ?? remote.digest,
        sizeBytes: remote.sizeBytes,
        target,
      };
    }
    return {
      kind: 'unavailable',
      reference: first,
      message: mismatch ?? `image not found: ${problems.join('; ')}`,
    };
  }

  /** The local repositories a reference may be in, copyable ones in the order they would be used. */
  private async targets(ref: ImageReference): Promise<LocalTarget[]> {
    if (ref.registry === this.config.harbor.registryHost) return [{ repository: ref.repository }];
    const mode: CopyMode = this.config.copyMode;
    const proxy = mode === 'replication' ? undefined : (await this.proxyProjects()).get(ref.registry);
    const targets: LocalTarget[] = [];
    if (proxy) targets.push({ repository: `${proxy}/${ref.repository}`, method: 'proxy-cache' });
    if (mode !== 'proxy-cache')
      targets.push({
        repository: `${this.config.replicationProject}/${ref.repository}`,
        method: 'replication',
      });
    // In auto mode a replicated copy counts as local too, but proxy caching is preferred for new copies.
    return targets;
  }

  /** Proxy-cache projects by the host of the registry they cache; refreshed after lookupCacheMs. */
  async proxyProjects(): Promise<Map<string, string>> {
    const now = Date.now();
    if (this.proxies && now - this.proxies.at < Math.max(this.config.lookupCacheMs, 1000))
      return this.proxies.byHost;
    const byHost = new Map<string, string>();
    const projects: Project[] = [];
    for (let page = 1; ; page++) {
      const batch = await this.track('harbor.listProjects', () =>
        this.harbor.listProjects({ page, pageSize: 100 }),
      );
      projects.push(...batch);
      if (batch.length < 100) break;
    }
    for (const project of projects) {
      if (!project.registry_id) continue;
      const registry = await this.track('harbor.getRegistry', () =>
        this.harbor.getRegistry(project.registry_id!),
      );
      if (registry) byHost.set(canonicalRegistry(new URL(registry.url).host), project.name);
    }
    this.proxies = { at: now, byHost };
    return byHost;
  }

  /**
   * The digest (and, when the source registry answers, the size) of a reference at its source:
   * read directly; when the source cannot be reached, asked through the local Harbor's proxy
   * cache with a manifest HEAD, which caches nothing.
   */
  private async inspectRemote(
    ref: ImageReference,
  ): Promise<{ digest: string; digests: string[]; sizeBytes: number | undefined } | undefined> {
    try {
      const resolved = await this.track('registry.resolveImage', () =>
        this.upstream(ref.registry).resolveImage(ref.repository, ref.reference),
      );
      return (
        resolved && {
          digest: resolved.digest,
          digests: [resolved.digest, resolved.manifestDigest],
          sizeBytes: resolved.size,
        }
      );
    } catch (error) {
      const proxy = (await this.proxyProjects()).get(ref.registry);
      if (!proxy) throw error;
      const head = await this.track('harbor.headManifest', () =>
        this.harborRegistry.headManifest(`${proxy}/${ref.repository}`, ref.reference),
      );
      return head && { digest: head.digest, digests: [head.digest], sizeBytes: undefined };
    }
  }

  private upstream(host: string): RegistryApi {
    let client = this.upstreamClients.get(host);
    if (!client) {
      client = new RegistryClient({
        baseUrl: this.upstreamUrl(host),
        verifyDigests: this.config.verifyDigests,
        retry: UPSTREAM_RETRY,
      });
      this.upstreamClients.set(host, client);
    }
    return client;
  }
}
