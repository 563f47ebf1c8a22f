import type { NormalisedStageRequest } from './mapping.ts';
import type { CallbackRegistration, Did, StageRequest } from './types.ts';

/** Rucio's scope rule; the name rule is looser than Rucio's default schema because SRCs differ. */
const NAMESPACE = /^[A-Za-z0-9._-]{1,25}$/;
const NAME = /^[^\s:]{1,255}$/;

/** Longest lifetime accepted: a year, far beyond any booking window, to catch unit mistakes. */
export const MAX_LIFETIME_SECONDS = 366 * 24 * 3600;

export class StageRequestError extends Error {
  override name = 'StageRequestError';
}

export function checkNamespace(namespace: string, where: string): string {
  if (!NAMESPACE.test(namespace))
    throw new StageRequestError(
      `${where} must be 1-25 letters, digits, '.', '_' or '-' (got ${JSON.stringify(namespace)})`,
    );
  return namespace;
}

/** Checks a DID's parts; the error names `where` and the broken rule. */
export function checkDid(did: Did, where: string): Did {
  checkNamespace(did.namespace, `${where}.namespace`);
  if (!NAME.test(did.name))
    throw new StageRequestError(
      `${where}.name must be 1-255 characters without spaces or ':' (got ${JSON.stringify(did.name)})`,
    );
  return { namespace: did.namespace, name: did.name };
}

/** `"namespace:name"` to a DID. */
export function parseDid(text: string, where = 'did'): Did {
  const colon = text.indexOf(':');
  if (colon <= 0)
    throw new StageRequestError(`${where} must be "namespace:name" (got ${JSON.stringify(text)})`);
  return checkDid({ namespace: text.slice(0, colon), name: text.slice(colon + 1) }, where);
}

export function formatDid(did: Did): string {
  return `${did.namespace}:${did.name}`;
}

export function checkUrl(text: string, where: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StageRequestError(`${where} must be an absolute URL (got ${JSON.stringify(text)})`);
  }
  if (!url.host) throw new StageRequestError(`${where} must name a host (got ${JSON.stringify(text)})`);
  return text;
}

export function checkLifetime(value: number, where: string): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_LIFETIME_SECONDS)
    throw new StageRequestError(
      `${where} must be a whole number of seconds from 1 to ${MAX_LIFETIME_SECONDS} (got ${value})`,
    );
  return value;
}

export function checkCallback(registration: CallbackRegistration, where: string): CallbackRegistration {
  const url = checkUrl(registration.url, `${where}.url`);
  if (!/^https?:$/.test(new URL(url).protocol))
    throw new StageRequestError(`${where}.url must be http or https (got ${JSON.stringify(url)})`);
  if (typeof registration.secret !== 'string' || registration.secret.length < 16)
    throw new StageRequestError(`${where}.secret must be at least 16 characters`);
  return { url, secret: registration.secret };
}

/** Validates a request before anything goes on the wire, so mistakes fail fast and locally. */
export function normaliseStageRequest(request: StageRequest): NormalisedStageRequest {
  const dids = (request.dids ?? []).map((did, i) =>
    typeof did === 'string' ? parseDid(did, `dids[${i}]`) : checkDid(did, `dids[${i}]`),
  );
  const urls = (request.urls ?? []).map((url, i) => checkUrl(url, `urls[${i}]`));
  if (dids.length + urls.length === 0)
    throw new StageRequestError('dids and urls must name at least one source');
  if (!request.targetStorageArea) throw new StageRequestError('targetStorageArea must be a non-empty string');
  const normalised: NormalisedStageRequest = {
    dids,
    urls,
    targetStorageArea: request.targetStorageArea,
    lifetimeSeconds: checkLifetime(request.lifetimeSeconds, 'lifetimeSeconds'),
  };
  if (request.parentNamespace !== undefined)
    normalised.parentNamespace = checkNamespace(request.parentNamespace, 'parentNamespace');
  if (request.callback) normalised.callback = checkCallback(request.callback, 'callback');
  return normalised;
}
