import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { JsonObject } from './bundle.ts';

/** The bundled OpenAPI document (schema/dist/openapi.json), the source of every table below. */
export const openapi: JsonObject = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../dist/openapi.json'), 'utf8'),
) as JsonObject;

const schemas = (openapi.components as JsonObject).schemas as Record<string, JsonObject>;

export const KIND_BASE = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

/** Canonical (1.0.7) kind URI of every concrete schema, by schema name. */
export const KINDS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(schemas).flatMap(([name, schema]) => {
    const kind = ((schema.properties as JsonObject | undefined)?.kind as JsonObject | undefined)?.const;
    return typeof kind === 'string' ? [[name, kind]] : [];
  }),
);

const schemaByKind = new Map(Object.entries(KINDS).map(([name, kind]) => [kind, name]));

/** Older kind URIs (1.0.5, October 2025, April 2025) mapped to the canonical ones. */
export const KIND_ALIASES: ReadonlyMap<string, string> = new Map(
  Object.entries(schemas).flatMap(([name, schema]) =>
    ((schema['x-kind-aliases'] as string[] | undefined) ?? []).map((alias) => [alias, KINDS[name]!] as const),
  ),
);

/** The canonical URI for a kind or one of its aliases; undefined when the kind is unknown. */
export function canonicalKind(kind: string): string | undefined {
  if (schemaByKind.has(kind)) return kind;
  return KIND_ALIASES.get(kind);
}

/** The schema (and GraphQL type) name of a canonical kind, e.g. `DockerContainer`. */
export function schemaNameForKind(kind: string): string | undefined {
  return schemaByKind.get(canonicalKind(kind) ?? kind);
}

/** The concrete kinds an abstract schema (e.g. `AbstractDataResource`) allows. */
export function kindsOf(abstractName: string): string[] {
  const oneOf = (schemas[abstractName]?.oneOf as JsonObject[] | undefined) ?? [];
  return oneOf.map((member) => KINDS[String(member.$ref).replace('#/components/schemas/', '')]!);
}
