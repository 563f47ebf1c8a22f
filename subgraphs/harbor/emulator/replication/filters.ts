/**
 * Replication filters and destination naming, as Harbor applies them: doublestar patterns on
 * repository names and tags, and `dest_namespace` with `dest_namespace_replace_count`.
 */
import type { ReplicationFilter } from '../../src/harbor/types.ts';

/**
 * Doublestar globbing: `*` within one path component, `**` across them, `?` one character,
 * `{a,b}` alternatives. Everything else is literal.
 */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  let braces = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '{') {
      braces++;
      source += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      source += ')';
    } else if (c === ',' && braces > 0) source += '|';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}${')'.repeat(braces)}$`);
}

function isPattern(value: string): boolean {
  return /[*?{]/.test(value);
}

export interface CompiledFilters {
  /** An exact repository name when the name filter has no wildcards (no listing needed). */
  exactName?: string;
  exactTag?: string;
  name(repository: string): boolean;
  tag(tag: string): boolean;
}

function matcher(filter: ReplicationFilter | undefined): (value: string) => boolean {
  if (!filter) return () => true;
  const patterns = (Array.isArray(filter.value) ? filter.value : [filter.value]).map(globToRegExp);
  const matches = (value: string) => patterns.some((pattern) => pattern.test(value));
  return filter.decoration === 'excludes' ? (value) => !matches(value) : matches;
}

/** Checks filters as Harbor's Filter.Validate does; the message names the field. */
export function validateFilters(filters: unknown): string | undefined {
  if (filters === undefined || filters === null) return undefined;
  if (!Array.isArray(filters)) return 'filters must be a list';
  for (const [i, filter] of filters.entries()) {
    if (typeof filter !== 'object' || filter === null) return `filters[${i}] must be an object`;
    const { type, value, decoration } = filter as Record<string, unknown>;
    if (!['name', 'tag', 'label', 'resource'].includes(String(type)))
      return `filters[${i}].type must be one of name, tag, label, resource`;
    if (
      decoration !== undefined &&
      decoration !== '' &&
      decoration !== 'matches' &&
      decoration !== 'excludes'
    )
      return `filters[${i}].decoration must be "matches" or "excludes"`;
    if (type === 'resource' && value !== 'image' && value !== 'artifact')
      return `filters[${i}].value must be "image" or "artifact" for a resource filter`;
    if ((type === 'name' || type === 'tag') && typeof value !== 'string')
      return `filters[${i}].value must be a string pattern`;
  }
  return undefined;
}

export function compileFilters(filters: ReplicationFilter[] = []): CompiledFilters {
  const name = filters.find((f) => f.type === 'name');
  const tag = filters.find((f) => f.type === 'tag');
  const exact = (filter: ReplicationFilter | undefined) =>
    filter && typeof filter.value === 'string' && filter.decoration !== 'excludes' && !isPattern(filter.value)
      ? filter.value
      : undefined;
  const exactName = exact(name);
  const exactTag = exact(tag);
  return {
    ...(exactName ? { exactName } : {}),
    ...(exactTag ? { exactTag } : {}),
    name: matcher(name),
    tag: matcher(tag),
  };
}

/**
 * Where a source repository lands. With `replaceCount` -1 (legacy) the whole source namespace
 * is replaced (`a/b/c` → `dest/c`); with N the first N components are (`a/b/c`, 1 → `dest/b/c`).
 * Without a destination namespace the name is kept.
 */
export function destinationRepository(
  source: string,
  destNamespace: string | undefined,
  replaceCount: number,
): string {
  if (!destNamespace) return source;
  const parts = source.split('/');
  const kept = replaceCount < 0 ? parts.slice(-1) : parts.slice(Math.min(replaceCount, parts.length - 1));
  return [destNamespace, ...kept].join('/');
}
