/**
 * Image references as written in an IVOA DockerContainer `image.locations[]` entry:
 * `[host[:port]/]path[:tag][@algorithm:hex]`, with Docker's defaults for short names.
 */

export const DOCKER_HUB = 'docker.io';

export interface ImageReference {
  /** Registry host (with port when given), `docker.io` for Docker Hub names. */
  registry: string;
  /** Repository path inside the registry, e.g. `ivoa/oligia-webtop` or `library/ubuntu`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** What to ask the registry for: the digest when pinned, else the tag (`latest` by default). */
  reference: string;
}

export class ImageReferenceError extends Error {
  constructor(
    readonly input: string,
    readonly field: 'reference' | 'registry' | 'repository' | 'tag' | 'digest',
    rule: string,
  ) {
    super(`image reference "${input}": ${field} ${rule}`);
    this.name = 'ImageReferenceError';
  }
}

// The grammar of distribution/reference, restated.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Docker Hub answers to several names; they are the same registry. */
const HUB_ALIASES = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
  'hub.docker.com',
]);

/** Whether the string is a content digest we can check (sha256 or sha512). */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** The registry's canonical host name (`docker.io` for any Docker Hub alias), lower-cased. */
export function canonicalRegistry(host: string): string {
  const lower = host.toLowerCase();
  return HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/** The base URL a client talks to for a registry host: Docker Hub's API lives elsewhere. */
export function registryBaseUrl(registry: string, scheme: 'https' | 'http' = 'https'): string {
  const host = canonicalRegistry(registry);
  return `${scheme}://${host === DOCKER_HUB ? 'registry-1.docker.io' : host}`;
}

/** Parses and normalises an image reference; throws ImageReferenceError naming the bad part. */
export function parseImageReference(input: string): ImageReference {
  const text = input.trim();
  if (text === '') throw new ImageReferenceError(input, 'reference', 'must not be empty');
  if (text.length > 4096)
    throw new ImageReferenceError(input, 'reference', 'must be at most 4096 characters');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw new ImageReferenceError(input, 'reference', 'must not carry a URL scheme (write host/path:tag)');

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw new ImageReferenceError(
        input,
        'digest',
        'must be sha256:<64 lower-case hex> or sha512:<128 lower-case hex>',
      );
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  // A colon after the last slash separates the tag; one before it belongs to host:port.
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw new ImageReferenceError(
        input,
        'tag',
        'must be 1-128 of [A-Za-z0-9_.-], not starting with . or -',
      );
  }

  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  ) {
    if (!HOST.test(first))
      throw new ImageReferenceError(
        input,
        'registry',
        'must be a host name or address with an optional :port',
      );
    registry = canonicalRegistry(first);
    parts.shift();
  }
  if (parts.length === 0 || parts.some((part) => !COMPONENT.test(part)))
    throw new ImageReferenceError(
      input,
      'repository',
      'must be one or more /-separated lower-case components of [a-z0-9] joined by ".", "_", "__" or "-"',
    );
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > 255)
    throw new ImageReferenceError(input, 'repository', 'must be at most 255 characters');

  if (!tag && !digest) tag = 'latest';
  return {
    registry,
    repository,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
    reference: digest ?? tag!,
  };
}

/** The normalised text form: `registry/repository[:tag][@digest]`. */
export function formatImageReference(ref: Omit<ImageReference, 'reference'>): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
