import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';

/** The reference broker's own test documents, shipped beside the project in ../shared. */
export const EXAMPLES_DIR = resolve(import.meta.dirname, '../../../shared/reference/calycopis-examples');

export function example(name: string): unknown {
  return parse(readFileSync(resolve(EXAMPLES_DIR, name), 'utf8'));
}

export function examples(filter: (name: string) => boolean): string[] {
  return readdirSync(EXAMPLES_DIR).filter(filter).sort();
}
