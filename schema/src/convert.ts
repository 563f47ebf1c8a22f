import type { JsonObject } from './bundle.ts';
import { schemaNameForKind } from './kinds.ts';

/**
 * Converts between IVOA documents (JSON/YAML as the REST API speaks them) and the GraphQL shapes
 * of the same data. The two differ only in packaging: GraphQL adds `id` (= `meta.uuid`),
 * `__typename` on every kind-typed object, and lists that are never absent; IVOA omits empty lists
 * and nulls, as the reference serialiser does.
 */

type Doc = Record<string, unknown>;
const isObject = (value: unknown): value is Doc =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Fields that hold a list in GraphQL and may be absent in IVOA, by the GraphQL type holding them. */
const LIST_FIELDS: Record<string, string[]> = {
  ExecutionStep: ['costs', 'metrics', 'storage', 'data', 'connectors', 'history'],
  OfferSet: ['costs', 'metrics', 'offers'],
  ComponentMetadata: ['messages', 'options'],
  DockerImageSpec: ['locations'],
  DockerNetworkSpec: ['ports'],
  DockerExternalPort: ['addresses'],
  EnumValueOption: ['values'],
  SkaoDataResourceBlock: ['replicas'],
};
const COMPONENT_LISTS = ['costs', 'metrics'];
const KIND_LISTS: Record<string, string[]> = {
  DockerContainer: ['command'],
  SimpleComputeResource: ['volumes'],
  SimpleStorageResource: ['data'],
};

/** Nested objects whose GraphQL type is fixed by the field name (not by a kind). */
const NESTED: Record<string, string> = {
  meta: 'ComponentMetadata',
  image: 'DockerImageSpec',
  network: 'DockerNetworkSpec',
  external: 'DockerExternalPort',
  skao: 'SkaoDataResourceBlock',
};

function toGraphQLValue(value: unknown, typeName: string | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => toGraphQLValue(item, undefined));
  if (!isObject(value)) return value;
  // The entities' own GraphQL types win over the IVOA session kinds they are made from.
  const entity = typeName === 'ExecutionStep' || typeName === 'OfferSet';
  const kindType = !entity && typeof value.kind === 'string' ? schemaNameForKind(value.kind) : undefined;
  const type = kindType ?? typeName;
  const out: Doc = {};
  if (kindType) out.__typename = kindType;
  for (const [key, item] of Object.entries(value)) {
    out[key] = Array.isArray(item)
      ? item.map((entry) => toGraphQLValue(entry, undefined))
      : toGraphQLValue(item, NESTED[key]);
  }
  const lists = [
    ...(LIST_FIELDS[type ?? ''] ?? []),
    ...(kindType ? [...COMPONENT_LISTS, ...(KIND_LISTS[kindType] ?? [])] : []),
  ];
  for (const field of lists) if (out[field] === undefined || out[field] === null) out[field] = [];
  return out;
}

/** An IVOA session document as a GraphQL `ExecutionStep` (history and offer set supplied by the caller). */
export function stepToGraphQL(
  session: JsonObject,
  extra: { history?: unknown[]; offerSet?: unknown } = {},
): Doc {
  const meta = isObject(session.meta) ? session.meta : {};
  const step = toGraphQLValue(session, 'ExecutionStep') as Doc;
  return {
    ...step,
    __typename: 'ExecutionStep',
    id: meta.uuid,
    history: extra.history ?? [],
    offerSet: extra.offerSet ?? null,
  };
}

/** An IVOA offer-set document as a GraphQL `OfferSet`. */
export function offerSetToGraphQL(offerSet: JsonObject): Doc {
  const meta = isObject(offerSet.meta) ? offerSet.meta : {};
  const out = toGraphQLValue(offerSet, 'OfferSet') as Doc;
  const offers = ((offerSet.offers as JsonObject[] | undefined) ?? []).map((offer) => stepToGraphQL(offer));
  return { ...out, __typename: 'OfferSet', id: meta.uuid, offers };
}

const GRAPHQL_ONLY = new Set(['__typename', 'id', 'history', 'offerSet']);

/**
 * A GraphQL value back as an IVOA document: GraphQL-only fields, nulls and empty lists removed.
 * Also turns a GraphQL `ExecutionRequestInput` variable into the IVOA request it mirrors.
 */
export function fromGraphQL<T = JsonObject>(value: unknown): T {
  const strip = (node: unknown, top: boolean): unknown => {
    if (Array.isArray(node)) return node.map((item) => strip(item, false));
    if (!isObject(node)) return node;
    const out: Doc = {};
    for (const [key, item] of Object.entries(node)) {
      if (item === null || item === undefined) continue;
      if (key === '__typename' || (top && GRAPHQL_ONLY.has(key))) continue;
      if (Array.isArray(item) && item.length === 0) continue;
      out[key] = strip(item, false);
    }
    return out;
  };
  return strip(value, true) as T;
}
