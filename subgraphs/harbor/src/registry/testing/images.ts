/**
 * Pushes a small real image through the OCI API (config and layer blobs, one manifest per
 * platform, and an index when there are several), for tests against any registry.
 */
import type { RegistryApi } from '../client.ts';
import type { Platform } from '../manifest.ts';
import { MediaType, sha256Digest } from '../manifest.ts';

export interface PushedImage {
  /** What the tag names: the index, or the only manifest. */
  digest: string;
  mediaType: string;
  platforms: { platform: Platform; digest: string; size: number; layersSize: number }[];
}

export async function pushTestImage(
  client: RegistryApi,
  repository: string,
  tag: string,
  {
    platforms = [{ architecture: 'amd64', os: 'linux' }],
    format = 'oci',
  }: { platforms?: Platform[]; format?: 'oci' | 'docker' } = {},
): Promise<PushedImage> {
  const docker = format === 'docker';
  const pushed: PushedImage['platforms'] = [];
  const descriptors = [];
  for (const platform of platforms) {
    const config = Buffer.from(
      JSON.stringify({
        ...platform,
        created: '2024-01-01T00:00:00Z',
        rootfs: { type: 'layers', diff_ids: [] },
        config: {},
      }),
    );
    const layers = [1, 2].map((n) =>
      Buffer.from(`${repository}:${tag} ${platform.os}/${platform.architecture} layer ${n}\n`.repeat(40 * n)),
    );
    const configDigest = await client.pushBlob(repository, config);
    const layerDescriptors = [];
    for (const layer of layers)
      layerDescriptors.push({
        mediaType: docker ? MediaType.dockerLayer : MediaType.ociLayer,
        digest: await client.pushBlob(repository, layer),
        size: layer.byteLength,
      });
    const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: {
          mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig,
          digest: configDigest,
          size: config.byteLength,
        },
        layers: layerDescriptors,
      }),
    );
    const layersSize = layers.reduce((sum, layer) => sum + layer.byteLength, 0);
    // Children of an index are pushed untagged, by digest.
    const reference = platforms.length === 1 ? tag : sha256Digest(manifest);
    const digest = await client.pushManifest(repository, reference, manifest, mediaType);
    pushed.push({ platform, digest, size: manifest.byteLength + config.byteLength + layersSize, layersSize });
    descriptors.push({ mediaType, digest, size: manifest.byteLength, platform });
  }
  if (platforms.length === 1)
    return { digest: pushed[0]!.digest, mediaType: descriptors[0]!.mediaType, platforms: pushed };
  const mediaType = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: descriptors }));
  return {
    digest: await client.pushManifest(repository, tag, index, mediaType),
    mediaType,
    platforms: pushed,
  };
}
