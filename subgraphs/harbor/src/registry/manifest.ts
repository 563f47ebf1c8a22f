/**
 * The manifest documents of the OCI image spec and their Docker v2 schema 2 twins, read
 * strictly enough that a wrong document is reported by field, and platform selection for
 * multi-architecture indexes.
 */
import { createHash } from 'node:crypto';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.ociIndex, MediaType.dockerManifestList];
export const IMAGE_MEDIA_TYPES: readonly string[] = [MediaType.ociManifest, MediaType.dockerManifest];

/** Sent on every manifest request: without it registries fall back to ancient schema 1. */
export const MANIFEST_ACCEPT = [...INDEX_MEDIA_TYPES, ...IMAGE_MEDIA_TYPES].join(', ');

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export const DEFAULT_PLATFORM: Platform = { architecture: 'amd64', os: 'linux' };

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ImageManifest {
  kind: 'image';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface IndexManifest {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export type Manifest = ImageManifest | IndexManifest;

export class ManifestError extends Error {
  constructor(
    readonly field: string,
    rule: string,
  ) {
    super(`manifest ${field} ${rule}`);
    this.name = 'ManifestError';
  }
}

export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest of `bytes` computed with the algorithm named in `expected`. */
export function digestWithAlgorithmOf(expected: string, bytes: Uint8Array): string {
  const algorithm = expected.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readDescriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) throw new ManifestError(field, 'must be an object');
  const { mediaType, digest, size, platform, annotations, urls } = value;
  if (typeof mediaType !== 'string' || mediaType === '')
    throw new ManifestError(`${field}.mediaType`, 'must be a non-empty string');
  if (typeof digest !== 'string' || !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest))
    throw new ManifestError(`${field}.digest`, 'must be algorithm:encoded');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new ManifestError(`${field}.size`, 'must be a non-negative integer');
  const descriptor: Descriptor = { mediaType, digest, size };
  if (platform !== undefined) {
    if (!isObject(platform) || typeof platform.architecture !== 'string' || typeof platform.os !== 'string')
      throw new ManifestError(`${field}.platform`, 'must have string architecture and os');
    descriptor.platform = {
      architecture: platform.architecture,
      os: platform.os,
      ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}),
      ...(typeof platform['os.version'] === 'string' ? { 'os.version': platform['os.version'] } : {}),
    };
  }
  if (isObject(annotations)) descriptor.annotations = annotations as Record<string, string>;
  if (Array.isArray(urls)) descriptor.urls = urls.filter((url): url is string => typeof url === 'string');
  return descriptor;
}

/**
 * Reads a manifest body. `contentType` (the response's Content-Type) wins over the body's own
 * `mediaType`, which Docker schema 2 requires and OCI makes optional.
 */
export function parseManifest(body: Uint8Array | string, contentType?: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  } catch {
    throw new ManifestError('body', 'must be JSON');
  }
  if (!isObject(json)) throw new ManifestError('body', 'must be a JSON object');
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const headerType = contentType?.split(';')[0]?.trim();
  let mediaType = headerType && headerType !== 'application/json' ? headerType : declared;
  // An OCI document without mediaType is told apart by shape.
  mediaType ??= Array.isArray(json.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  if (json.schemaVersion !== 2) throw new ManifestError('schemaVersion', 'must be 2');

  if (INDEX_MEDIA_TYPES.includes(mediaType)) {
    if (!Array.isArray(json.manifests)) throw new ManifestError('manifests', 'must be an array');
    return {
      kind: 'index',
      mediaType,
      manifests: json.manifests.map((entry, i) => readDescriptor(entry, `manifests[${i}]`)),
    };
  }
  if (IMAGE_MEDIA_TYPES.includes(mediaType)) {
    if (!Array.isArray(json.layers)) throw new ManifestError('layers', 'must be an array');
    return {
      kind: 'image',
      mediaType,
      config: readDescriptor(json.config, 'config'),
      layers: json.layers.map((entry, i) => readDescriptor(entry, `layers[${i}]`)),
    };
  }
  throw new ManifestError('mediaType', `${mediaType} is not an OCI or Docker v2 image manifest or index`);
}

const ARCHITECTURE_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64' };

function normalisePlatform(platform: Platform): Platform {
  const architecture =
    ARCHITECTURE_ALIASES[platform.architecture.toLowerCase()] ?? platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  // arm64 means v8 unless stated otherwise, so the two spellings must match each other.
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  return { architecture, os: platform.os.toLowerCase(), ...(variant ? { variant } : {}) };
}

/**
 * The index entry for a platform. A variant is compared only when asked for, and entries with
 * no platform or `unknown` ones (build attestations) are never chosen.
 */
export function selectPlatform(
  index: IndexManifest,
  wanted: Platform = DEFAULT_PLATFORM,
): Descriptor | undefined {
  const want = normalisePlatform(wanted);
  const candidates = index.manifests.filter((entry) => {
    if (!entry.platform || entry.platform.os === 'unknown') return false;
    const have = normalisePlatform(entry.platform);
    return (
      have.os === want.os &&
      have.architecture === want.architecture &&
      (want.variant === undefined || have.variant === want.variant)
    );
  });
  return candidates[0];
}

/** Harbor's and the registry's notion of an image's size: manifest + config + layers. */
export function imageSize(manifestBytes: number, manifest: ImageManifest): number {
  return manifestBytes + manifest.config.size + layersSize(manifest);
}

/** What a pull downloads: the layers. */
export function layersSize(manifest: ImageManifest): number {
  return manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
}
