/** The OCI distribution client: `RegistryApi`, manifests, platforms and image references. */
export type { Credentials } from './auth.ts';
export { parseChallenge } from './auth.ts';
export type {
  FetchedManifest,
  ManifestHead,
  RegistryApi,
  RegistryClientOptions,
  RegistryErrorCode,
  RequestOptions,
  ResolvedImage,
} from './client.ts';
export { RegistryClient, RegistryError } from './client.ts';
export type { Descriptor, ImageManifest, IndexManifest, Manifest, Platform } from './manifest.ts';
export {
  DEFAULT_PLATFORM,
  imageSize,
  layersSize,
  MANIFEST_ACCEPT,
  ManifestError,
  MediaType,
  parseManifest,
  selectPlatform,
  sha256Digest,
} from './manifest.ts';
export type { ImageReference } from './reference.ts';
export {
  canonicalRegistry,
  DOCKER_HUB,
  formatImageReference,
  ImageReferenceError,
  isDigest,
  parseImageReference,
  registryBaseUrl,
} from './reference.ts';
