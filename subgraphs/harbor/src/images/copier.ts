/**
 * Making the local copy of an image: a manual execution of a pull-mode replication policy (one
 * per source repository and tag, reused), or a manifest pull through a proxy-cache project,
 * which makes Harbor cache the image in the background. Either way Harbor's webhooks say when
 * the copy is done.
 */
import { createHash } from 'node:crypto';
import { HarborError, type HarborApi } from '../harbor/index.ts';
import { canonicalRegistry } from '../registry/index.ts';
import type { HarborWorkerConfig } from '../config.ts';
import type { ImageLocator, Lookup, Track } from './locator.ts';

export type RemoteLookup = Extract<Lookup, { kind: 'remote' }>;

/** A copy under way: replication has an execution to wait (and stop) for; a proxy pull has none. */
export interface StartedCopy {
  method: 'replication' | 'proxy-cache';
  executionId?: number;
}

export class ImageCopier {
  constructor(
    private readonly harbor: HarborApi,
    private readonly locator: ImageLocator,
    private readonly config: HarborWorkerConfig,
    private readonly track: Track,
  ) {}

  async start(lookup: RemoteLookup): Promise<StartedCopy> {
    if (lookup.target.method === 'proxy-cache') {
      // The first GET of an uncached manifest makes the proxy cache the image behind the answer.
      const found = await this.track('registry.getManifest', () =>
        this.locator.localRegistry.getManifest(lookup.target.repository, lookup.digest),
      );
      if (!found)
        throw new Error(`the proxy cache could not pull ${lookup.target.repository}@${lookup.digest}`);
      return { method: 'proxy-cache' };
    }
    const policyId = await this.policyFor(lookup);
    const executionId = await this.track('harbor.startReplication', () =>
      this.harbor.startReplication(policyId),
    );
    return { method: 'replication', executionId };
  }

  async stop(executionId: number): Promise<void> {
    await this.track('harbor.stopReplicationExecution', () =>
      this.harbor.stopReplicationExecution(executionId),
    );
  }

  /** The pull policy for this repository and tag, created the first time it is needed. */
  private async policyFor(lookup: RemoteLookup): Promise<number> {
    const { ref } = lookup;
    const selector = `${ref.registry}/${ref.repository}:${ref.tag ?? '*'}`;
    const name = `srcnet-${createHash('sha256').update(selector).digest('hex').slice(0, 16)}`;
    const find = async () =>
      (
        await this.track('harbor.listReplicationPolicies', () =>
          this.harbor.listReplicationPolicies({ name }),
        )
      ).find((policy) => policy.name === name)?.id;
    const found = await find();
    if (found !== undefined) return found;
    const registryId = await this.registryFor(ref.registry);
    const create = () =>
      this.track('harbor.createReplicationPolicy', () =>
        this.harbor.createReplicationPolicy({
          name,
          description: `SRCNet image worker: pull ${selector}`,
          src_registry: { id: registryId },
          dest_namespace: this.config.replicationProject,
          // Keep the whole source path under the project: a/b/c lands in <project>/a/b/c.
          dest_namespace_replace_count: 0,
          trigger: { type: 'manual' },
          filters: [
            { type: 'name', value: ref.repository },
            // Without a tag (a location pinned by digest only) every tag of the repository is copied.
            ...(ref.tag ? [{ type: 'tag' as const, value: ref.tag }] : []),
          ],
          override: true,
          enabled: true,
        }),
      );
    return orFindOnConflict(create, find);
  }

  /** The registry endpoint for a source host, registered in Harbor when missing. */
  private async registryFor(host: string): Promise<number> {
    const hosts = new Set([host, canonicalRegistry(new URL(this.locator.upstreamUrl(host)).host)]);
    const find = async () =>
      (await this.track('harbor.listRegistries', () => this.harbor.listRegistries({ pageSize: 100 }))).find(
        (r) => hosts.has(canonicalRegistry(new URL(r.url).host)),
      )?.id;
    const found = await find();
    if (found !== undefined) return found;
    const create = () =>
      this.track('harbor.createRegistry', () =>
        this.harbor.createRegistry({
          name: `srcnet-${host.replace(/[^a-z0-9]+/g, '-')}`,
          type: 'docker-registry',
          url: this.locator.upstreamUrl(host),
          insecure: false,
        }),
      );
    return orFindOnConflict(create, find);
  }
}

/** Creates, or, when another worker instance created the same thing first (409), finds it. */
async function orFindOnConflict(
  create: () => Promise<number>,
  find: () => Promise<number | undefined>,
): Promise<number> {
  try {
    return await create();
  } catch (error) {
    if (!(error instanceof HarborError && error.status === 409)) throw error;
    const found = await find();
    if (found === undefined) throw error;
    return found;
  }
}
