import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { JsonObject } from './bundle.ts';
import type * as Ivoa from './ivoa.ts';
import { jsonSchemas } from './json-schemas.ts';
import { canonicalKind, openapi } from './kinds.ts';

/** One thing wrong with a document: where (a JSON pointer), which rule, and a sentence saying what. */
export interface ValidationIssue {
  path: string;
  rule: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

const ajv = new Ajv2020({ allErrors: true, discriminator: true, strict: true, strictTypes: false });
addFormats.default(ajv, ['date-time', 'uri', 'uuid']);

const schemas = jsonSchemas(openapi);
const validators = new Map<string, ValidateFunction>(
  Object.entries(schemas).map(([name, schema]) => [name, ajv.compile(schema)]),
);

function describe(error: ErrorObject): ValidationIssue {
  const path = error.instancePath || '/';
  switch (error.keyword) {
    case 'discriminator': {
      const tag = error.params.tag as string;
      const value = error.params.tagValue as unknown;
      return value === undefined
        ? { path: `${path === '/' ? '' : path}/${tag}`, rule: 'required', message: `${tag} is required` }
        : {
            path: `${path === '/' ? '' : path}/${tag}`,
            rule: 'kind',
            message: `unknown ${tag} ${JSON.stringify(value)}`,
          };
    }
    case 'required':
      return {
        path: `${path === '/' ? '' : path}/${error.params.missingProperty}`,
        rule: 'required',
        message: `${error.params.missingProperty} is required`,
      };
    case 'pattern':
      return { path, rule: 'pattern', message: `must be ${patternName(error)}` };
    case 'const':
      return { path, rule: 'const', message: `must be ${JSON.stringify(error.params.allowedValue)}` };
    case 'enum':
      return {
        path,
        rule: 'enum',
        message: `must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`,
      };
    default:
      return { path, rule: error.keyword, message: error.message ?? 'is not valid' };
  }
}

function patternName(error: ErrorObject): string {
  const ref = String(error.schemaPath);
  if (ref.includes('ISO8601Duration')) return 'an ISO-8601 duration such as PT1H';
  if (ref.includes('ISO8601Interval')) return 'an ISO-8601 interval such as 2025-11-25T05:14:00Z/PT2H';
  if (ref.includes('ISO8601Instant'))
    return 'an ISO-8601 date-time with a zone, such as 2025-11-25T05:13:00Z';
  return `a string matching ${error.params.pattern}`;
}

/** Ajv reports every failing branch of an `allOf`; keep one issue per path and rule. */
function unique(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path} ${issue.rule}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Rewrites every known alias of a kind URI to its 1.0.7 form, in place of a copy. */
export function canonicalizeKinds<T>(document: T): T {
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [
        key,
        key === 'kind' && typeof value === 'string' ? (canonicalKind(value) ?? value) : visit(value),
      ]),
    );
  };
  return visit(document) as T;
}

function validateAs<T>(name: string, document: unknown): ValidationResult<T> {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    return { ok: false, issues: [{ path: '/', rule: 'type', message: 'the document must be an object' }] };
  }
  const value = canonicalizeKinds(document);
  const validate = validators.get(name)!;
  if (validate(value)) return { ok: true, value: value as T };
  return { ok: false, issues: unique((validate.errors ?? []).map(describe)) };
}

export type ExecutionRequestDocument = JsonObject;

/** Checks an IVOA ExecutionRequest (1.0.7, or 1.0.5 kinds) and returns it with canonical kinds. */
export const validateExecutionRequest = (document: unknown) =>
  validateAs<ExecutionRequestDocument>('execution-request', document);
export const validateUpdate = (document: unknown) => validateAs<JsonObject>('update', document);
export const validateExecutionStep = (document: unknown) =>
  validateAs<JsonObject>('execution-step', document);
export const validateOfferSet = (document: unknown) => validateAs<JsonObject>('offer-set', document);
export const validateWorkerCommand = (document: unknown) =>
  validateAs<Ivoa.WorkerCommand>('worker-command', document);
export const validateComponentCallback = (document: unknown) =>
  validateAs<Ivoa.ComponentCallback>('component-callback', document);

export function formatIssues(issues: ValidationIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message} (${issue.rule})`).join('; ');
}
