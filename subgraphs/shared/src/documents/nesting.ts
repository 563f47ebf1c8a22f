/**
 * The deepest nesting a received JSON document may have. Real documents (IVOA requests, worker
 * commands, backend notifications) need fewer than ten levels; the limit stops a hostile one
 * (thousands of levels, which JSON.parse reads happily) before recursive code such as the schema
 * validator meets it and exhausts the stack.
 */
export const MAX_NESTING = 64;

export interface NestingProblem {
  /** JSON pointer of the first value found below the limit. */
  path: string;
  message: string;
}

/** Where a document nests deeper than `max`, or undefined; walks it without recursion. */
export function nestingProblem(document: unknown, max = MAX_NESTING): NestingProblem | undefined {
  const pending: { node: unknown; path: string; depth: number }[] = [{ node: document, path: '', depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { node, path, depth } = next;
    if (node === null || typeof node !== 'object') continue;
    if (depth === max) return { path: path || '/', message: `nests deeper than ${max} levels` };
    for (const [key, value] of Object.entries(node))
      pending.push({
        node: value,
        path: `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        depth: depth + 1,
      });
  }
  return undefined;
}
