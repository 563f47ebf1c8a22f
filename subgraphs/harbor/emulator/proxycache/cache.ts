/**
 * Proxy-cache projects, following Harbor's `repoproxy` middleware and proxy controller:
 *
 * - A manifest GET of an image not yet cached answers at once with the upstream's manifest
 *   (Harbor streams it through) and starts caching in the background. The artifact appears in
 *   `GET .../artifacts/{ref}` only when that finishes, after a time proportional to the image
 *   size (the project's `proxy_speed_kb`, else the emulator bandwidth). So the first pull
 *   succeeds and the API says 404 until the copy lands: poll the API, or wait for the
 *   PUSH_ARTIFACT webhook the cached artifact fires.
 * - A manifest HEAD only asks upstream; it caches nothing.
 * - A tag is revalidated against upstream on each pull: the local copy is served when the
 *   digests agree; when upstream lost the tag, only with `proxy_cache_local_on_not_found`.
 * - Deviation: Harbor caches an index trimmed to the children actually pulled; the emulator
 *   caches the whole index with all its children.
 */
import type { StoredManifest } from '../artifacts/content.ts';
import type { ArtifactRecord, ProjectRecord } from '../artifacts/store.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { Timing } from '../config.ts';
import { transferMs } from '../config.ts';
import type { HarborCore } from '../core.ts';
import type { Random } from '@srcnet/service-kit';
import type { UpstreamImage } from '../registry/upstreams.ts';
import { transferSize } from '../registry/upstreams.ts';
import { isDigest } from '../../src/registry/reference.ts';

export interface ProxyStats {
  /** Background caching jobs started. */
  pulls: number;
  cached: number;
  failed: number;
  inFlight: number;
}

export type ProxyAnswer =
  | { kind: 'local'; manifest: StoredManifest; artifact: ArtifactRecord }
  | { kind: 'remote'; manifest: StoredManifest }
  | { kind: 'head'; digest: string; mediaType: string; size: number };

export class ProxyCache {
  private readonly jobs = new Map<string, NodeJS.Timeout>();
  private counts = { pulls: 0, cached: 0, failed: 0 };

  constructor(
    private readonly core: HarborCore,
    private readonly timing: Timing,
    private readonly random: Random,
  ) {}

  stats(): ProxyStats {
    return { ...this.counts, inFlight: this.jobs.size };
  }

  resetStats(): void {
    this.counts = { pulls: 0, cached: 0, failed: 0 };
  }

  /** Answers a manifest request in a proxy project; undefined means 404. */
  async manifest(
    project: ProjectRecord,
    repository: string,
    reference: string,
    method: 'GET' | 'HEAD',
    operator: string,
  ): Promise<ProxyAnswer | undefined> {
    const remoteRepository = repository.slice(project.name.length + 1);
    const local = this.core.store.resolve(repository, reference);
    if (local && isDigest(reference))
      return { kind: 'local', manifest: local.manifest, artifact: local.artifact };
    const upstream = this.core.endpoints.upstream(project.registryId!);
    let head: Awaited<ReturnType<typeof upstream.head>>;
    try {
      head = await upstream.head(remoteRepository, reference);
    } catch (error) {
      // Harbor falls back to the local copy when upstream cannot be reached.
      if (local) return { kind: 'local', manifest: local.manifest, artifact: local.artifact };
      throw new HarborFailure(
        502,
        'UNKNOWN',
        `upstream registry: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (!head) {
      if (local && project.metadata.proxy_cache_local_on_not_found === 'true')
        return { kind: 'local', manifest: local.manifest, artifact: local.artifact };
      return undefined;
    }
    if (local && local.manifest.digest === head.digest)
      return { kind: 'local', manifest: local.manifest, artifact: local.artifact };
    if (method === 'HEAD') return { kind: 'head', ...head };
    const image = await upstream.fetch(remoteRepository, reference);
    if (!image) return undefined;
    this.startCaching(project, repository, isDigest(reference) ? undefined : reference, image, operator);
    return { kind: 'remote', manifest: image.top };
  }

  private startCaching(
    project: ProjectRecord,
    repository: string,
    tag: string | undefined,
    image: UpstreamImage,
    operator: string,
  ): void {
    const key = `${repository}@${image.top.digest}:${tag ?? ''}`;
    if (this.jobs.has(key)) return;
    this.counts.pulls += 1;
    const speedKb = Number(project.metadata.proxy_speed_kb ?? 0);
    const duration = transferMs(
      this.timing,
      this.random,
      this.timing.proxyOverheadMs,
      transferSize(image),
      speedKb > 0 ? speedKb * 1024 : undefined,
    );
    const timer = setTimeout(() => {
      this.jobs.delete(key);
      try {
        const { artifact } = this.core.storeImage(repository, image, tag, operator);
        this.counts.cached += 1;
        // Harbor reports the pull that caused the caching once the artifact exists locally.
        this.core.artifactEvent('PULL_ARTIFACT', repository, artifact, tag, operator);
      } catch {
        this.counts.failed += 1;
      }
    }, duration);
    this.jobs.set(key, timer);
  }

  /** Restart: caching runs in a goroutine of the core process, so it is simply lost. */
  forget(): void {
    for (const timer of this.jobs.values()) clearTimeout(timer);
    this.jobs.clear();
  }
}
