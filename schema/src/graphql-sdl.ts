import { parse, print } from 'graphql';
import type { Json, JsonObject } from './bundle.ts';

/**
 * Derives the GraphQL SDL of the shared types from the bundled OpenAPI document.
 *
 * Rules: each abstract type (a `oneOf` with a `kind` discriminator) becomes an interface named
 * without its `Abstract` prefix, with one object type per kind; on input it becomes one input
 * type carrying the fields of every kind, so an IVOA JSON document is accepted unchanged as a
 * variable and told apart by `kind` at run time. The IVOA session becomes the federated
 * `ExecutionStep` entity and the offer set the `OfferSet` entity, both keyed by `id`
 * (the IVOA `meta.uuid`).
 */

type Schema = JsonObject;

interface Field {
  name: string;
  schema: Schema;
  required: boolean;
}

/** Names the GraphQL side uses where the IVOA name would read wrongly in a graph. */
const RENAMES: Record<string, string> = {
  AbstractExecutionSession: 'ExecutionStep',
  ScheduledExecutionSession: 'ExecutionStep',
  OfferSetResponse: 'OfferSet',
  SessionPhase: 'ExecutionStepPhase',
};

/** Fields added to the entities on top of the IVOA document. */
const ENTITY_FIELDS: Record<string, string> = {
  ExecutionStep: `
    "The step's IVOA session uuid (the same as meta.uuid)."
    id: ID!
    "The offer set this step was offered in; absent for direct execution."
    offerSet: OfferSet
    "Every phase change of the step, oldest first."
    history: [PhaseChange!]!`,
  OfferSet: `
    "The offer set's uuid (the same as meta.uuid)."
    id: ID!`,
};

/** Fields that the service always fills in, non-null on output. */
const ALWAYS_PRESENT: Record<string, string[]> = {
  ExecutionStep: ['kind', 'meta', 'phase'],
  OfferSet: ['meta', 'result'],
};

const SCALARS = `
"An ISO-8601 date-time with a zone designator."
scalar DateTime
"A 64-bit integer (sizes in bytes can exceed 32 bits)."
scalar Long
"A JSON object of names to values (IVOA NameValueMap)."
scalar JSONObject
`;

export const OUTPUT_ROOTS = ['ScheduledExecutionSession', 'OfferSetResponse', 'PhaseChange', 'MessageItem'];
export const INPUT_ROOTS = ['ExecutionRequest'];

export function graphqlName(schemaName: string): string {
  return RENAMES[schemaName] ?? schemaName.replace(/^Abstract/, '');
}

export function generateSdl(bundled: JsonObject): string {
  const schemas = (bundled.components as JsonObject).schemas as Record<string, Schema>;
  const refName = (schema: Schema): string | undefined =>
    typeof schema.$ref === 'string' ? schema.$ref.replace('#/components/schemas/', '') : undefined;
  const deref = (schema: Schema): Schema => {
    const name = refName(schema);
    return name ? schemas[name]! : schema;
  };

  const fieldsOf = (schema: Schema): Field[] => {
    const own = (schema.properties ?? {}) as Record<string, Schema>;
    const required = new Set((schema.required as string[] | undefined) ?? []);
    const inherited = ((schema.allOf as Schema[] | undefined) ?? []).flatMap((part) => fieldsOf(deref(part)));
    const byName = new Map<string, Field>();
    for (const field of inherited) byName.set(field.name, field);
    for (const [name, property] of Object.entries(own)) {
      const base = byName.get(name);
      // A kind's `kind: {const}` narrows the base `kind: {format: uri}`; keep the base type.
      byName.set(name, {
        name,
        schema: base && property.const ? base.schema : property,
        required: required.has(name),
      });
    }
    for (const name of required) {
      const field = byName.get(name);
      if (field) byName.set(name, { ...field, required: true });
    }
    return [...byName.values()];
  };

  const isAbstract = (schema: Schema) => Array.isArray(schema.oneOf) && schema.discriminator !== undefined;
  const members = (schema: Schema) => (schema.oneOf as Schema[]).map((member) => refName(member)!);
  const isEnum = (schema: Schema) => Array.isArray(schema.enum);
  const isMap = (schema: Schema) =>
    schema.type === 'object' && typeof schema.additionalProperties === 'object' && !schema.properties;

  const outputs = new Map<string, string>();
  const inputs = new Map<string, string>();
  const enums = new Map<string, string>();
  const outputQueue: string[] = [...OUTPUT_ROOTS];
  const inputQueue: string[] = [...INPUT_ROOTS];

  const describe = (schema: Schema, indent = '') =>
    typeof schema.description === 'string' ? `${indent}${JSON.stringify(schema.description.trim())}\n` : '';

  const scalarFor = (schema: Schema): string | undefined => {
    if (schema.format === 'date-time') return 'DateTime';
    if (schema.format === 'uuid') return 'ID';
    if (schema.type === 'integer') return schema.format === 'int64' ? 'Long' : 'Int';
    if (schema.type === 'number') return 'Float';
    if (schema.type === 'boolean') return 'Boolean';
    if (schema.type === 'string' && !isEnum(schema)) return 'String';
    return undefined;
  };

  const typeRef = (schema: Schema, mode: 'output' | 'input'): string => {
    const name = refName(schema);
    const target = deref(schema);
    if (target.type === 'array') {
      const item = typeRef(target.items as Schema, mode);
      return mode === 'output' ? `[${item}!]!` : `[${item}!]`;
    }
    if (isMap(target)) return 'JSONObject';
    if (isEnum(target)) {
      if (!name) throw new Error(`an inline enum (${JSON.stringify(target.enum)}) needs a named schema`);
      enums.set(graphqlName(name), name);
      return graphqlName(name);
    }
    const scalar = scalarFor(target);
    if (scalar) return scalar;
    if (!name)
      throw new Error(`an inline object needs a named schema: ${JSON.stringify(schema).slice(0, 120)}`);
    if (mode === 'output') {
      outputQueue.push(name);
      return graphqlName(name);
    }
    inputQueue.push(name);
    return `${graphqlName(name)}Input`;
  };

  const renderFields = (fields: Field[], mode: 'output' | 'input', typeName: string) =>
    fields
      .map((field) => {
        let type = typeRef(field.schema, mode);
        const forced = mode === 'output' && ALWAYS_PRESENT[typeName]?.includes(field.name);
        if ((field.required || forced) && !type.endsWith('!')) type += '!';
        if (mode === 'input' && field.name === 'kind' && !type.endsWith('!')) type += '!';
        return `${describe(deref(field.schema), '  ')}  ${field.name}: ${type}`;
      })
      .join('\n');

  const interfaceFields = (schema: Schema): Field[] => {
    const all = members(schema).map((member) => fieldsOf(schemas[member]!));
    return all[0]!.filter((field) =>
      all.every((fields) => fields.some((other) => other.name === field.name)),
    );
  };

  const mergedFields = (schema: Schema, owner: string): Field[] => {
    const merged = new Map<string, Field>();
    for (const member of members(schema)) {
      for (const field of fieldsOf(schemas[member]!)) {
        const seen = merged.get(field.name);
        if (seen && typeRef(seen.schema, 'input') !== typeRef(field.schema, 'input')) {
          throw new Error(`${owner}: field ${field.name} has different types in different kinds`);
        }
        merged.set(field.name, { ...field, required: field.name === 'kind' });
      }
    }
    return [...merged.values()];
  };

  const entityKey = (name: string) => (ENTITY_FIELDS[name] ? ' @key(fields: "id")' : '');

  while (outputQueue.length > 0) {
    const schemaName = outputQueue.shift()!;
    const name = graphqlName(schemaName);
    if (outputs.has(name)) continue;
    outputs.set(name, '');
    const schema = schemas[schemaName]!;
    if (name === 'ExecutionStep') {
      const fields = fieldsOf(schemas.ScheduledExecutionSession!);
      outputs.set(
        name,
        `"An execution step: an IVOA execution session as the broker and the workers see it."\n` +
          `type ExecutionStep${entityKey(name)} {${ENTITY_FIELDS[name]}\n${renderFields(fields, 'output', name)}\n}`,
      );
    } else if (isAbstract(schema)) {
      outputQueue.push(...members(schema));
      outputs.set(
        name,
        `${describe(schema)}interface ${name} {\n${renderFields(interfaceFields(schema), 'output', name)}\n}`,
      );
    } else {
      const parents = Object.entries(schemas)
        .filter(([, candidate]) => isAbstract(candidate) && members(candidate).includes(schemaName))
        .map(([parentName]) => graphqlName(parentName));
      const implementsClause = parents.length ? ` implements ${parents.join(' & ')}` : '';
      const extra = ENTITY_FIELDS[name] ?? '';
      outputs.set(
        name,
        `${describe(schema)}type ${name}${implementsClause}${entityKey(name)} {${extra}\n${renderFields(fieldsOf(schema), 'output', name)}\n}`,
      );
    }
  }

  while (inputQueue.length > 0) {
    const schemaName = inputQueue.shift()!;
    const name = `${graphqlName(schemaName)}Input`;
    if (inputs.has(name)) continue;
    inputs.set(name, '');
    const schema = schemas[schemaName]!;
    const fields = isAbstract(schema) ? mergedFields(schema, name) : fieldsOf(schema);
    const note = isAbstract(schema)
      ? `"${graphqlName(schemaName)}: the fields of every kind; \`kind\` says which apply (checked against the IVOA schema when received)."\n`
      : describe(schema);
    inputs.set(name, `${note}input ${name} {\n${renderFields(fields, 'input', name)}\n}`);
  }

  const enumSdl = [...enums].map(([name, schemaName]) => {
    const schema = schemas[schemaName]!;
    return `${describe(schema)}enum ${name} {\n${(schema.enum as Json[]).map((value) => `  ${value}`).join('\n')}\n}`;
  });

  const header =
    '# Generated by `npm run codegen` from schema/openapi/*.yaml. Do not edit.\n' +
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])\n';
  const body = [
    SCALARS,
    ...sorted(enumSdl),
    ...sorted([...outputs.values()]),
    ...sorted([...inputs.values()]),
  ].join('\n\n');
  return header + print(parse(body)) + '\n';
}

function sorted(blocks: string[]): string[] {
  const nameOf = (block: string) => /(?:type|interface|input|enum) (\w+)/.exec(block)?.[1] ?? '';
  return [...blocks].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
}
