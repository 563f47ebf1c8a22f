/**
 * The emulated Harbor: every store and engine, wired together, and the operations that cut
 * across them (storing an image and announcing it).
 */
import type { WebhookEventType } from '../src/harbor/types.ts';
import { parseImageReference } from '../src/registry/reference.ts';
import { buildImage, ContentStore } from './artifacts/content.ts';
import type { ArtifactRecord } from './artifacts/store.ts';
import { ArtifactStore, HarborFailure } from './artifacts/store.ts';
import { AccessControl } from './auth/access.ts';
import type { HarborEmulatorOptions, ImageFixture, ProjectFixture, Timing } from './config.ts';
import { resolveTiming } from './config.ts';
import { FaultInjector } from './faults/faults.ts';
import { RequestCounter } from './http/requests.ts';
import { ProxyCache } from './proxycache/cache.ts';
import { seededRandom } from '@srcnet/service-kit';
import { RegistryEndpoints } from './registry/endpoints.ts';
import type { UpstreamImage } from './registry/upstreams.ts';
import { SyntheticRegistry } from './registry/upstreams.ts';
import { ReplicationEngine } from './replication/engine.ts';
import { WebhookNotifier } from './webhooks/notifier.ts';
import { WebhookPolicies } from './webhooks/policies.ts';

export const DEFAULT_USERS = { admin: { password: 'Harbor12345', admin: true } };

export class HarborCore {
  readonly timing: Timing;
  readonly content = new ContentStore();
  readonly store = new ArtifactStore(this.content);
  readonly synthetic = new Map<string, SyntheticRegistry>();
  readonly endpoints = new RegistryEndpoints(this.synthetic);
  readonly access: AccessControl;
  readonly faults: FaultInjector;
  readonly notifier: WebhookNotifier;
  readonly webhooks: WebhookPolicies;
  readonly replication: ReplicationEngine;
  readonly proxy: ProxyCache;
  readonly requests = new RequestCounter();
  /** Set once the server listens, unless configured. */
  externalUrl = 'http://harbor.emulator';

  constructor(readonly options: HarborEmulatorOptions) {
    const seed = options.seed ?? 1;
    this.timing = resolveTiming(options.timing);
    const failureRate = options.replicationFailureRate ?? 0;
    if (!(failureRate >= 0 && failureRate <= 1))
      throw new RangeError(`replicationFailureRate must be from 0 to 1 (got ${failureRate})`);
    this.access = new AccessControl(options.users ?? DEFAULT_USERS, options.robotPrefix);
    this.faults = new FaultInjector(seededRandom(seed), options.faults);
    const log = options.logger
      ? (message: string) => process.stderr.write(`[harbor-emulator] ${message}\n`)
      : undefined;
    this.notifier = new WebhookNotifier(
      this.faults,
      {
        maxRetries: this.timing.webhookMaxRetries,
        retryDelayMs: this.timing.webhookRetryDelayMs * this.timing.timeScale,
        timeoutMs: this.timing.webhookTimeoutMs,
        reorderHoldMs: this.timing.reorderHoldMs,
      },
      log,
    );
    this.webhooks = new WebhookPolicies(this.notifier);
    this.replication = new ReplicationEngine(this, this.timing, seededRandom(seed + 1), failureRate);
    this.proxy = new ProxyCache(this, this.timing, seededRandom(seed + 2));
  }

  /** Applies the configured projects and images. */
  seed(): void {
    for (const fixture of this.options.upstreamImages ?? []) this.addUpstreamImage(fixture);
    for (const project of this.options.projects ?? []) this.addProject(project);
    for (const fixture of this.options.localImages ?? []) this.addLocalImage(fixture);
  }

  addProject(fixture: ProjectFixture): void {
    let registryId: number | undefined;
    if (fixture.proxy) {
      const { registryName, type, url } = fixture.proxy;
      registryId =
        this.endpoints.list().find((r) => r.name === registryName)?.id ??
        this.endpoints.create({ name: registryName, type, url }).id;
    }
    const metadata: Record<string, string> = {};
    if (fixture.proxy?.speedKb) metadata.proxy_speed_kb = String(fixture.proxy.speedKb);
    if (fixture.proxy?.localOnNotFound) metadata.proxy_cache_local_on_not_found = 'true';
    this.store.createProject({
      name: fixture.name,
      public: fixture.public ?? false,
      metadata,
      ...(registryId ? { registryId } : {}),
    });
  }

  /** Makes an image available at a made-up remote registry (`ghcr.io/ivoa/x:tag`). */
  addUpstreamImage(fixture: ImageFixture): UpstreamImage {
    const ref = parseImageReference(fixture.image);
    if (!ref.tag) throw new RangeError(`upstream image ${fixture.image}: a tag is required`);
    let registry = this.synthetic.get(ref.registry);
    if (!registry) this.synthetic.set(ref.registry, (registry = new SyntheticRegistry(ref.registry)));
    return registry.addImage(ref.repository, ref.tag, fixture);
  }

  /** Stores a made-up image in a local project (`library/ubuntu:22.04`). */
  addLocalImage(fixture: ImageFixture): UpstreamImage {
    const slash = fixture.image.indexOf('/');
    const colon = fixture.image.lastIndexOf(':');
    if (slash < 0 || colon < slash)
      throw new RangeError(`local image ${fixture.image} must be written project/repository:tag`);
    const repository = fixture.image.slice(0, colon);
    const tag = fixture.image.slice(colon + 1);
    const image = buildImage(`local/${repository}:${tag}`, fixture);
    this.storeImage(repository, image, tag, 'admin', false);
    return image;
  }

  /**
   * Stores an image (children first, as a registry requires) in a repository, creating the
   * project when missing as Harbor's replication adapter does, and announces a new artifact
   * with PUSH_ARTIFACT.
   */
  storeImage(
    repository: string,
    image: UpstreamImage,
    tag: string | undefined,
    operator: string,
    announce = true,
  ): { artifact: ArtifactRecord; created: boolean } {
    const projectName = repository.split('/')[0]!;
    if (!repository.includes('/'))
      throw new HarborFailure(400, 'BAD_REQUEST', `repository ${repository} must be inside a project`);
    if (!this.store.projectByName(projectName))
      this.store.createProject({ name: projectName, ownerName: operator });
    for (const blob of image.blobs) this.content.addBlob(blob);
    for (const child of image.children) {
      this.content.addManifest({
        ...child,
        attrs: child.attrs ?? this.content.attrsFromConfig(child.manifest),
      });
      this.store.put(repository, child);
    }
    const top = { ...image.top, attrs: image.top.attrs ?? this.content.attrsFromConfig(image.top.manifest) };
    this.content.addManifest(top);
    const result = this.store.put(repository, top, tag);
    if (result.created && announce)
      this.artifactEvent('PUSH_ARTIFACT', repository, result.artifact, tag, operator);
    return result;
  }

  /** Sends a PUSH/PULL/DELETE_ARTIFACT event in Harbor's Default shape to the project's policies. */
  artifactEvent(
    type: WebhookEventType,
    repository: string,
    artifact: ArtifactRecord,
    tag: string | undefined,
    operator: string,
  ): void {
    const project = this.store.projectOf(repository);
    const record = this.store.repositories.get(repository);
    if (!project) return;
    const host = new URL(this.externalUrl).host;
    const name = repository.slice(project.name.length + 1);
    this.webhooks.publish(project.id, type, operator, {
      resources: [
        {
          digest: artifact.digest,
          tag: tag ?? artifact.digest,
          resource_url: `${host}/${repository}${tag ? `:${tag}` : `@${artifact.digest}`}`,
        },
      ],
      repository: {
        date_created: Math.floor((record?.creationTime ?? new Date()).getTime() / 1000),
        name,
        namespace: project.name,
        repo_full_name: repository,
        repo_type: project.public ? 'public' : 'private',
      },
    });
  }

  close(): void {
    this.replication.close();
    this.proxy.forget();
    this.notifier.forget();
  }
}
