import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse } from 'yaml';

/**
 * Joins the building blocks under `openapi/` into one self-contained OpenAPI document.
 *
 * Written here rather than taken from a bundler library because our blocks follow one
 * convention (every schema is a uniquely named entry of some file's `components.schemas`),
 * so bundling is a rename of `$ref`s, and keeping the upstream names exactly matters more
 * to the generated GraphQL and TypeScript than a generic bundler's naming rules.
 */

export type JsonObject = { [key: string]: Json };
export type Json = string | number | boolean | null | Json[] | JsonObject;

export const OPENAPI_DIR = resolve(import.meta.dirname, '../openapi');
const ENTRY = 'execution-broker.yaml';

function listYaml(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listYaml(path);
    return name.endsWith('.yaml') ? [path] : [];
  });
}

function rewriteRefs(node: Json, file: string, dir: string, owner: Map<string, string>): Json {
  if (Array.isArray(node)) return node.map((item) => rewriteRefs(item, file, dir, owner));
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') {
      out[key] = rewriteRef(value, file, dir, owner);
    } else if (key === 'mapping' && value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, rewriteRef(String(v), file, dir, owner)]),
      );
    } else {
      out[key] = rewriteRefs(value, file, dir, owner);
    }
  }
  return out;
}

function rewriteRef(ref: string, file: string, dir: string, owner: Map<string, string>): string {
  const [target = '', pointer = ''] = ref.split('#');
  const match = /^\/components\/schemas\/([A-Za-z0-9_]+)$/.exec(pointer);
  if (!match) {
    if (target) throw new Error(`${relative(dir, file)}: cannot bundle the reference ${ref}`);
    return ref;
  }
  const name = match[1]!;
  const targetFile = target ? resolve(join(file, '..'), target) : file;
  if (owner.get(name) !== targetFile) {
    throw new Error(`${relative(dir, file)}: ${ref} does not name a schema of ${relative(dir, targetFile)}`);
  }
  return `#/components/schemas/${name}`;
}

export function bundle(dir: string = OPENAPI_DIR): JsonObject {
  const files = listYaml(dir).sort();
  const docs = new Map(files.map((file) => [file, parse(readFileSync(file, 'utf8')) as JsonObject]));
  const owner = new Map<string, string>();
  for (const [file, doc] of docs) {
    const schemas = ((doc.components as JsonObject | undefined)?.schemas ?? {}) as JsonObject;
    for (const name of Object.keys(schemas)) {
      const previous = owner.get(name);
      if (previous) {
        throw new Error(
          `schema ${name} is defined in both ${relative(dir, previous)} and ${relative(dir, file)}`,
        );
      }
      owner.set(name, file);
    }
  }
  const entryFile = join(dir, ENTRY);
  const entry = rewriteRefs(docs.get(entryFile)!, entryFile, dir, owner) as JsonObject;
  const schemas: JsonObject = {};
  for (const [name, file] of [...owner].sort(([a], [b]) => a.localeCompare(b))) {
    const doc = docs.get(file)!;
    const schema = ((doc.components as JsonObject).schemas as JsonObject)[name]!;
    schemas[name] = rewriteRefs(schema, file, dir, owner);
  }
  const components = { ...(entry.components as JsonObject), schemas };
  return { ...entry, components };
}
