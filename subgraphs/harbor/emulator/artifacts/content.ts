/**
 * Content-addressed storage shared by every repository of one emulator: manifests with their
 * bytes, and blobs. Layer blobs of made-up images are "virtual": their size is known but their
 * bytes are not, which is all replication timing and size reporting need.
 */
import type { Manifest, Platform } from '../../src/registry/manifest.ts';
import { imageSize, MediaType, parseManifest, sha256Digest } from '../../src/registry/manifest.ts';

export interface StoredManifest {
  /** Normally the sha256 of `bytes`; a declared digest for stand-ins of real images. */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  manifest: Manifest;
  /** Harbor's `extra_attrs` for images: architecture, os, created, author, config. */
  attrs?: Record<string, unknown>;
}

export interface BlobRecord {
  digest: string;
  size: number;
  /** Absent for virtual blobs. */
  bytes?: Buffer;
}

export class ContentStore {
  readonly manifests = new Map<string, StoredManifest>();
  readonly blobs = new Map<string, BlobRecord>();

  addManifest(manifest: StoredManifest): void {
    this.manifests.set(manifest.digest, manifest);
  }

  addBlob(blob: BlobRecord): void {
    const existing = this.blobs.get(blob.digest);
    // Never let a virtual copy replace real bytes.
    if (!existing || (!existing.bytes && blob.bytes)) this.blobs.set(blob.digest, blob);
  }

  /** Harbor's size: manifest + config + layers; for an index, index + children. */
  size(digest: string): number {
    const stored = this.manifests.get(digest);
    if (!stored) return 0;
    if (stored.manifest.kind === 'image') return imageSize(stored.bytes.byteLength, stored.manifest);
    return (
      stored.bytes.byteLength +
      stored.manifest.manifests.reduce((sum, child) => sum + this.size(child.digest), 0)
    );
  }

  /** Reads the image config blob, when its bytes are here, into Harbor's extra_attrs. */
  attrsFromConfig(manifest: Manifest): Record<string, unknown> | undefined {
    if (manifest.kind !== 'image') return undefined;
    const bytes = this.blobs.get(manifest.config.digest)?.bytes;
    if (!bytes) return undefined;
    try {
      const config = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      const attrs: Record<string, unknown> = {};
      for (const key of ['architecture', 'os', 'created', 'author', 'config', 'variant'])
        if (config[key] !== undefined) attrs[key] = config[key];
      return attrs;
    } catch {
      return undefined;
    }
  }
}

/** Wraps manifest bytes received from a client or an upstream. Throws ManifestError. */
export function storedFromBytes(
  bytes: Buffer,
  contentType: string | undefined,
  digest?: string,
): StoredManifest {
  const manifest = parseManifest(bytes, contentType);
  return { digest: digest ?? sha256Digest(bytes), mediaType: manifest.mediaType, bytes, manifest };
}

/** A made-up image, as configured for an upstream or a local project. */
export interface ImageSpec {
  /** One entry: a plain image (unless `index`); several: a multi-arch index. Default amd64/linux. */
  platforms?: Platform[];
  /** Wrap even a single platform in an index. */
  index?: boolean;
  /** Bytes of layers per platform (default 40 MiB). */
  size?: number;
  /** Number of layers the size is split into (default 3). */
  layers?: number;
  /** OCI (default) or Docker v2 media types. */
  format?: 'oci' | 'docker';
  /**
   * The digest to serve the top-level manifest under, for a stand-in of a real image whose
   * bytes we do not have (e.g. the digest in an IVOA request). Clients that hash manifest
   * bodies will see a mismatch: the registry client needs `verifyDigests: false` for them.
   */
  digest?: string;
}

export interface BuiltImage {
  top: StoredManifest;
  children: StoredManifest[];
  blobs: BlobRecord[];
}

const DEFAULT_LAYERS_SIZE = 40 * 1024 * 1024;

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2), 'utf8');
}

/**
 * Builds the manifests and blobs of a made-up image. Deterministic in `name` and the spec, so
 * that the same configuration always yields the same digests.
 */
export function buildImage(name: string, spec: ImageSpec = {}): BuiltImage {
  const platforms = spec.platforms?.length ? spec.platforms : [{ architecture: 'amd64', os: 'linux' }];
  const layerCount = spec.layers ?? 3;
  const total = spec.size ?? DEFAULT_LAYERS_SIZE;
  if (!(Number.isSafeInteger(layerCount) && layerCount >= 1))
    throw new RangeError(`image ${name}: layers must be a positive integer (got ${layerCount})`);
  if (!(Number.isSafeInteger(total) && total >= layerCount))
    throw new RangeError(
      `image ${name}: size must be an integer of at least one byte a layer (got ${total})`,
    );
  const docker = spec.format === 'docker';
  const blobs: BlobRecord[] = [];
  const children: StoredManifest[] = platforms.map((platform) => {
    const label = `${name}|${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
    const layers = Array.from({ length: layerCount }, (_, i) => {
      const size =
        i === layerCount - 1
          ? total - Math.floor(total / layerCount) * (layerCount - 1)
          : Math.floor(total / layerCount);
      const digest = sha256Digest(`${label}|layer ${i}`);
      blobs.push({ digest, size });
      return { mediaType: docker ? MediaType.dockerLayer : MediaType.ociLayer, digest, size };
    });
    const configBytes = json({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created: '2024-01-01T00:00:00Z',
      author: 'harbor-emulator',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Labels: { 'org.opencontainers.image.title': name },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((_, i) => sha256Digest(`${label}|diff ${i}`)) },
    });
    const config = {
      mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig,
      digest: sha256Digest(configBytes),
      size: configBytes.byteLength,
    };
    blobs.push({ digest: config.digest, size: config.size, bytes: configBytes });
    const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
    const bytes = json({ schemaVersion: 2, mediaType, config, layers });
    return {
      digest: sha256Digest(bytes),
      mediaType,
      bytes,
      manifest: { kind: 'image', mediaType, config, layers },
      attrs: {
        architecture: platform.architecture,
        os: platform.os,
        created: '2024-01-01T00:00:00Z',
        author: 'harbor-emulator',
      },
    };
  });

  const declared = spec.digest;
  if (platforms.length === 1 && !spec.index) {
    const only = children[0]!;
    return { top: declared ? { ...only, digest: declared } : only, children: [], blobs };
  }
  const mediaType = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const manifests = children.map((child, i) => ({
    mediaType: child.mediaType,
    digest: child.digest,
    size: child.bytes.byteLength,
    platform: platforms[i]!,
  }));
  const bytes = json({ schemaVersion: 2, mediaType, manifests });
  return {
    top: {
      digest: declared ?? sha256Digest(bytes),
      mediaType,
      bytes,
      manifest: { kind: 'index', mediaType, manifests },
    },
    children,
    blobs,
  };
}
