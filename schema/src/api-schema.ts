import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const GRAPHQL_DIR = resolve(import.meta.dirname, '../graphql');

/** The broker subgraph's SDL: the generated shared types and the hand-written API. */
export function brokerSubgraphSdl(): string {
  return ['execution-step.graphql', 'broker-api.graphql']
    .map((file) => readFileSync(resolve(GRAPHQL_DIR, file), 'utf8'))
    .join('\n');
}

/** The same SDL as clients see it, without the federation directives. */
export function brokerApiSdl(): string {
  return brokerSubgraphSdl()
    .replace(/^extend schema @link\(.*\)$/m, '')
    .replace(/ @key\(fields: "[^"]*"\)/g, '');
}
