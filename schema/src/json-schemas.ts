import type { Json, JsonObject } from './bundle.ts';

/**
 * Plain JSON Schema 2020-12 documents for clients in other languages, one per document a client
 * sends or receives. Each carries every definition it needs under `$defs`.
 */
export const JSON_SCHEMA_ROOTS: Record<string, string> = {
  'execution-request': 'ExecutionRequest',
  'offer-set': 'OfferSetResponse',
  'execution-step': 'AbstractExecutionSession',
  update: 'AbstractUpdate',
  'worker-command': 'WorkerCommand',
  'component-callback': 'ComponentCallback',
};

const BASE_ID = 'https://srcnet.skao.int/schema/execution-step/1.0.7/';

/** Keeps `discriminator.propertyName` (validators such as Ajv use it) and drops OpenAPI-only keywords. */
function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'xml' || key.startsWith('x-')) continue;
    if (key === 'discriminator') {
      out[key] = { propertyName: (value as JsonObject).propertyName! };
      // Ajv applies `discriminator` (which replaces `oneOf`) to objects only: without a type, a
      // null or a string in place of a component would pass.
      out.type ??= 'object';
    } else if (key === '$ref' && typeof value === 'string') {
      out[key] = value.replace('#/components/schemas/', '#/$defs/');
    } else if (key === 'format' && (value === 'int64' || value === 'int32' || value === 'float')) {
      continue;
    } else {
      out[key] = toJsonSchema(value);
    }
  }
  return out;
}

function reachable(schemas: Record<string, Json>, root: string): string[] {
  const seen = new Set<string>();
  const visit = (node: Json) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') {
        const name = value.replace('#/components/schemas/', '');
        if (!seen.has(name)) {
          seen.add(name);
          visit(schemas[name]!);
        }
      } else if (key !== 'mapping') visit(value);
    }
  };
  seen.add(root);
  visit(schemas[root]!);
  return [...seen].sort();
}

export function jsonSchemas(bundled: JsonObject): Record<string, JsonObject> {
  const schemas = (bundled.components as JsonObject).schemas as Record<string, Json>;
  return Object.fromEntries(
    Object.entries(JSON_SCHEMA_ROOTS).map(([file, root]) => [
      file,
      {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: `${BASE_ID}${file}.schema.json`,
        title: root,
        $ref: `#/$defs/${root}`,
        $defs: Object.fromEntries(
          reachable(schemas, root).map((name) => [name, toJsonSchema(schemas[name]!)]),
        ),
      },
    ]),
  );
}
