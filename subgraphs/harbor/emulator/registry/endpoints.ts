/**
 * Registry endpoints (`/registries`): the remote registries that proxy-cache projects and
 * replication policies point at. An endpoint whose host has a made-up registry in memory is
 * served from it; any other is reached over HTTP.
 */
import type { Registry } from '../../src/harbor/types.ts';
import { canonicalRegistry } from '../../src/registry/reference.ts';
import { HarborFailure } from '../artifacts/store.ts';
import type { SyntheticRegistry, Upstream } from './upstreams.ts';
import { HttpUpstream } from './upstreams.ts';

/** Adapter types Harbor ships (`src/pkg/reg/adapter/*`). */
const REGISTRY_TYPES = new Set([
  'harbor',
  'docker-hub',
  'docker-registry',
  'github-ghcr',
  'google-gcr',
  'aws-ecr',
  'azure-acr',
  'ali-acr',
  'jfrog-artifactory',
  'quay',
  'gitlab',
  'dtr',
  'huawei-SWR',
  'tencent-tcr',
  'volcengine-cr',
]);

/** The host a registry URL names, with Docker Hub's many names folded into `docker.io`. */
function endpointHost(url: string): string {
  return canonicalRegistry(new URL(url).host);
}

export class RegistryEndpoints {
  private readonly records = new Map<number, Registry>();
  private readonly http = new Map<number, HttpUpstream>();
  private nextId = 1;

  constructor(private readonly synthetic: Map<string, SyntheticRegistry>) {}

  create(body: unknown): Registry {
    if (typeof body !== 'object' || body === null)
      throw new HarborFailure(400, 'BAD_REQUEST', 'the body must be a registry object');
    const input = body as Record<string, unknown>;
    if (typeof input.name !== 'string' || input.name.trim() === '')
      throw new HarborFailure(400, 'BAD_REQUEST', 'name must be a non-empty string');
    if (typeof input.type !== 'string' || !REGISTRY_TYPES.has(input.type))
      throw new HarborFailure(400, 'BAD_REQUEST', `type must be one of ${[...REGISTRY_TYPES].join(', ')}`);
    let url: URL;
    try {
      url = new URL(String(input.url));
    } catch {
      throw new HarborFailure(400, 'BAD_REQUEST', 'url must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new HarborFailure(400, 'BAD_REQUEST', 'url must be an absolute http(s) URL');
    for (const record of this.records.values())
      if (record.name === input.name)
        throw new HarborFailure(409, 'CONFLICT', `registry ${input.name} already exists`);
    const credential =
      typeof input.credential === 'object' && input.credential !== null
        ? (input.credential as Registry['credential'])
        : undefined;
    const now = new Date().toISOString();
    const record: Registry = {
      id: this.nextId++,
      name: input.name,
      url: url.toString().replace(/\/$/, ''),
      type: input.type,
      description: typeof input.description === 'string' ? input.description : '',
      ...(credential
        ? {
            credential: {
              type: credential.type ?? 'basic',
              access_key: credential.access_key ?? '',
              access_secret: credential.access_secret ?? '',
            },
          }
        : {}),
      insecure: input.insecure === true,
      status: 'healthy',
      creation_time: now,
      update_time: now,
    };
    this.records.set(record.id, record);
    return record;
  }

  get(id: number): Registry | undefined {
    return this.records.get(id);
  }

  list(): Registry[] {
    return [...this.records.values()];
  }

  delete(id: number): boolean {
    this.http.delete(id);
    return this.records.delete(id);
  }

  /** As Harbor shows it: the secret is never given back. */
  view(record: Registry): Registry {
    return record.credential
      ? { ...record, credential: { ...record.credential, access_secret: '*****' } }
      : { ...record };
  }

  upstream(id: number): Upstream {
    const record = this.records.get(id);
    if (!record) throw new HarborFailure(404, 'NOT_FOUND', `registry ${id} not found`);
    const synthetic = this.synthetic.get(endpointHost(record.url));
    if (synthetic) return synthetic;
    let upstream = this.http.get(id);
    if (!upstream) {
      const { access_key, access_secret } = record.credential ?? {};
      upstream = new HttpUpstream(
        record.url,
        access_key ? { username: access_key, password: access_secret ?? '' } : undefined,
      );
      this.http.set(id, upstream);
    }
    return upstream;
  }
}
