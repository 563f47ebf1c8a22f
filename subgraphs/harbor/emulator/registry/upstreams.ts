/**
 * Remote registries as the emulator sees them: made-up ones held in memory (for `ghcr.io`,
 * `docker.io`, ... in tests and the default configuration) and real ones reached over HTTP
 * with the OCI client (another emulator, a docker-registry, any registry).
 */
import { RegistryClient } from '../../src/registry/client.ts';
import type { Credentials } from '../../src/registry/auth.ts';
import { isDigest } from '../../src/registry/reference.ts';
import type { BlobRecord, BuiltImage, ImageSpec, StoredManifest } from '../artifacts/content.ts';
import { buildImage, storedFromBytes } from '../artifacts/content.ts';

/** An image as an upstream serves it: the manifest a reference names, its children and blobs. */
export type UpstreamImage = BuiltImage;

export interface Upstream {
  /** What a manifest HEAD would tell; undefined when the upstream has no such reference. */
  head(
    repository: string,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; size: number } | undefined>;
  /** The whole image; undefined when the upstream has no such reference. */
  fetch(repository: string, reference: string): Promise<UpstreamImage | undefined>;
  repositories(): Promise<string[]>;
  tags(repository: string): Promise<string[]>;
  /** Blob bytes, when the upstream can give them. */
  blob(repository: string, digest: string): Promise<Buffer | undefined>;
}

/** A registry that exists only in memory, filled with addImage(). */
export class SyntheticRegistry implements Upstream {
  private readonly tagsByRepository = new Map<string, Map<string, string>>();
  /** Images by digest, children of indexes included, so pulls by child digest work too. */
  private readonly images = new Map<string, { repository: string; image: UpstreamImage }>();

  constructor(readonly host: string) {}

  addImage(repository: string, tag: string, spec: ImageSpec = {}): UpstreamImage {
    const image = buildImage(`${this.host}/${repository}:${tag}`, spec);
    let tags = this.tagsByRepository.get(repository);
    if (!tags) this.tagsByRepository.set(repository, (tags = new Map()));
    tags.set(tag, image.top.digest);
    this.images.set(image.top.digest, { repository, image });
    for (const child of image.children)
      this.images.set(child.digest, {
        repository,
        image: { top: child, children: [], blobs: blobsOf(child, image.blobs) },
      });
    return image;
  }

  private find(repository: string, reference: string): UpstreamImage | undefined {
    const digest = isDigest(reference) ? reference : this.tagsByRepository.get(repository)?.get(reference);
    const found = digest ? this.images.get(digest) : undefined;
    return found && found.repository === repository ? found.image : undefined;
  }

  async head(repository: string, reference: string) {
    const image = this.find(repository, reference);
    return (
      image && { digest: image.top.digest, mediaType: image.top.mediaType, size: image.top.bytes.byteLength }
    );
  }

  async fetch(repository: string, reference: string): Promise<UpstreamImage | undefined> {
    return this.find(repository, reference);
  }

  async repositories(): Promise<string[]> {
    return [...this.tagsByRepository.keys()].sort();
  }

  async tags(repository: string): Promise<string[]> {
    return [...(this.tagsByRepository.get(repository)?.keys() ?? [])].sort();
  }

  async blob(_repository: string, digest: string): Promise<Buffer | undefined> {
    for (const { image } of this.images.values()) {
      const blob = image.blobs.find((b) => b.digest === digest);
      if (blob?.bytes) return blob.bytes;
    }
    return undefined;
  }
}

function blobsOf(manifest: StoredManifest, blobs: BlobRecord[]): BlobRecord[] {
  if (manifest.manifest.kind !== 'image') return [];
  const wanted = new Set([
    manifest.manifest.config.digest,
    ...manifest.manifest.layers.map((layer) => layer.digest),
  ]);
  return blobs.filter((blob) => wanted.has(blob.digest));
}

/** A real registry reached over HTTP. Layer bytes are not copied: the emulator keeps sizes only. */
export class HttpUpstream implements Upstream {
  private readonly client: RegistryClient;

  constructor(baseUrl: string, credentials?: Credentials) {
    // Trust the registry's Docker-Content-Digest, so that stand-in images with declared digests
    // can be chained through several emulators.
    this.client = new RegistryClient({
      baseUrl,
      ...(credentials ? { credentials } : {}),
      verifyDigests: false,
      retry: { attempts: 3, timeoutMs: 10_000 },
    });
  }

  async head(repository: string, reference: string) {
    return this.client.headManifest(repository, reference);
  }

  async fetch(repository: string, reference: string): Promise<UpstreamImage | undefined> {
    const top = await this.client.getManifest(repository, reference);
    if (!top) return undefined;
    const stored = storedFromBytes(Buffer.from(top.bytes), top.mediaType, top.digest);
    const children: StoredManifest[] = [];
    if (top.manifest.kind === 'index') {
      for (const entry of top.manifest.manifests) {
        const child = await this.client.getManifest(repository, entry.digest);
        if (child) children.push(storedFromBytes(Buffer.from(child.bytes), child.mediaType, child.digest));
      }
    }
    const blobs: BlobRecord[] = [];
    for (const manifest of stored.manifest.kind === 'image' ? [stored] : children) {
      if (manifest.manifest.kind !== 'image') continue;
      const config = manifest.manifest.config;
      // The config is small and gives Harbor's extra_attrs; a registry may still refuse it.
      const bytes = await this.client.getBlob(repository, config.digest).catch(() => undefined);
      blobs.push({
        digest: config.digest,
        size: config.size,
        ...(bytes ? { bytes: Buffer.from(bytes) } : {}),
      });
      for (const layer of manifest.manifest.layers) blobs.push({ digest: layer.digest, size: layer.size });
    }
    return { top: stored, children, blobs };
  }

  async repositories(): Promise<string[]> {
    return this.client.listRepositories();
  }

  async tags(repository: string): Promise<string[]> {
    return this.client.listTags(repository);
  }

  async blob(repository: string, digest: string): Promise<Buffer | undefined> {
    const bytes = await this.client.getBlob(repository, digest);
    return bytes && Buffer.from(bytes);
  }
}

/** Bytes an image moves: manifests and every distinct blob. */
export function transferSize(image: UpstreamImage): number {
  const blobs = new Map(image.blobs.map((blob) => [blob.digest, blob.size]));
  let total =
    image.top.bytes.byteLength + image.children.reduce((sum, child) => sum + child.bytes.byteLength, 0);
  for (const size of blobs.values()) total += size;
  return total;
}
