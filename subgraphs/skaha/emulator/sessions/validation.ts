import type { ImageJson, ResourceContext } from '../../src/skaha/types.ts';
import { SESSION_TYPES } from '../../src/skaha/types.ts';
import { badRequest } from '../http/errors.ts';
import type { CreatePlan, SessionRecord, WorkloadType } from './engine.ts';

/** Request parameters: Skaha reads the query string and a form body alike. */
export type Params = URLSearchParams;

export interface CreateRules {
  context: ResourceContext;
  registryHosts: string[];
  images: ImageJson[];
}

const NAME_PATTERN = /^[A-Za-z0-9-]+$/;
const LABEL_LENGTH = 63;

/**
 * `POST /session` checked as Skaha's PostAction does (backends.md §1.4), including its quirks:
 * the name is lower-cased, `env` entries that do not split into exactly two parts on `=` are
 * dropped, `args` are split on single spaces.
 */
export function planSession(
  owner: string,
  params: Params,
  registryAuth: string | undefined,
  rules: CreateRules,
  existing: SessionRecord[],
): CreatePlan {
  const name = params.get('name');
  if (!name) throw badRequest('name is required');
  if (!NAME_PATTERN.test(name)) throw badRequest(`name ${name} is invalid: it must match [A-Za-z0-9\\-]+`);
  const image = checkImage(params.get('image'), rules.registryHosts);
  const typeText = params.get('type') || 'headless';
  if (!(SESSION_TYPES as readonly string[]).includes(typeText))
    throw badRequest(`Invalid session type: ${typeText}`);
  const type = typeText as WorkloadType;
  const cores = optionValue(params, 'cores', rules.context.cores.options);
  const ramGB = optionValue(params, 'ram', rules.context.memoryGB.options);
  const gpus = gpuCount(params, rules.context);
  checkRegistryAuth(image, registryAuth, rules.images);
  if (type !== 'headless') {
    const max = rules.context.maxInteractiveSessions ?? 5;
    const active = existing.filter(
      (r) =>
        r.type !== 'headless' &&
        r.type !== 'desktop-app' &&
        (r.status === 'Running' || r.status === 'Pending'),
    ).length;
    if (active >= max) throw badRequest(`User ${owner} has reached the maximum of ${max} active sessions.`);
  }
  const env: Record<string, string> = {};
  for (const entry of params.getAll('env')) {
    const parts = javaSplit(entry, '=');
    if (parts.length === 2) env[parts[0]!] = parts[1]!;
  }
  const argsText = params.get('args');
  const cmd = params.get('cmd');
  return {
    owner,
    name: name.toLowerCase().slice(0, LABEL_LENGTH),
    image,
    type,
    ...(cores === undefined ? {} : { cores }),
    ...(ramGB === undefined ? {} : { ramGB }),
    gpus: gpus ?? 0,
    ...(cmd ? { cmd } : {}),
    args: argsText ? javaSplit(argsText, ' ') : [],
    env,
  };
}

/** `POST /session/{id}/app`: image required, cores and ram optional. */
export function planApp(owner: string, params: Params, rules: CreateRules): CreatePlan {
  const image = checkImage(params.get('image'), rules.registryHosts);
  const cores = optionValue(params, 'cores', rules.context.cores.options);
  const ramGB = optionValue(params, 'ram', rules.context.memoryGB.options);
  return {
    owner,
    name: image.split('/').pop()!.split(':')[0]!.toLowerCase(),
    image,
    type: 'desktop-app',
    ...(cores === undefined ? {} : { cores }),
    ...(ramGB === undefined ? {} : { ramGB }),
    gpus: 0,
    args: [],
    env: {},
  };
}

function checkImage(image: string | null, hosts: string[]): string {
  if (!image) throw badRequest('image is required');
  if (!hosts.some((host) => image.startsWith(host)))
    throw badRequest(
      `image not in a trusted repository: ${image} must come from one of [${hosts.join(', ')}]`,
    );
  return image;
}

/** Parsed as a double; its integer part must be one of the /context options. */
function optionValue(params: Params, name: 'cores' | 'ram', options: number[]): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw badRequest(`Invalid value for '${name}': ${text} is not a number`);
  if (!options.includes(Math.trunc(value)))
    throw badRequest(`Invalid value for '${name}': ${text} is not one of the options in /context`);
  return value;
}

function gpuCount(params: Params, context: ResourceContext): number | undefined {
  const text = params.get('gpus');
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || !context.gpus.options.includes(value))
    throw badRequest(`Invalid value for 'gpus': ${text}`);
  return value;
}

/** Images outside the public cache can only be pulled with credentials. */
function checkRegistryAuth(image: string, header: string | undefined, images: ImageJson[]): void {
  if (header !== undefined) {
    const decoded = Buffer.from(header, 'base64').toString('utf8');
    if (decoded.split(':').length !== 2)
      throw badRequest('x-skaha-registry-auth must be base64("username:secret")');
    return;
  }
  if (!images.some((known) => known.id === image))
    throw badRequest(
      `image ${image} is not in the public image cache (GET /image): the x-skaha-registry-auth header is required`,
    );
}

/** Java's String.split: trailing empty strings are removed, so `KEY=` has a single part. */
export function javaSplit(text: string, separator: string): string[] {
  if (!text.includes(separator)) return [text];
  const parts = text.split(separator);
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}
