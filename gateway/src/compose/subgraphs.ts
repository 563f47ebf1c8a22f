import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { brokerSubgraphSdl } from '@srcnet/execution-step-schema';
import type { SubgraphSource } from './compose.ts';

const SUBGRAPHS_DIR = resolve(import.meta.dirname, '../../../subgraphs');

/** A subgraph the gateway composes: its name in the supergraph, where it listens, and its SDL. */
export interface SubgraphDefinition {
  name: string;
  /** The environment variable that overrides the URL. */
  urlVariable: string;
  defaultUrl: string;
  /** The SDL, or undefined while the subgraph is not part of this build yet. */
  sdl(): string | undefined;
}

/** A worker's SDL lives at subgraphs/<name>/src/schema.graphql; composition picks it up once it exists. */
function workerSdl(name: string) {
  return () => {
    const path = resolve(SUBGRAPHS_DIR, name, 'src/schema.graphql');
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };
}

const local = (port: number) => `http://127.0.0.1:${port}/graphql`;

/** The subgraphs of ARCHITECTURE.md, in the order they appear in the supergraph. */
export const SUBGRAPHS: readonly SubgraphDefinition[] = [
  { name: 'broker', urlVariable: 'BROKER_URL', defaultUrl: local(4001), sdl: brokerSubgraphSdl },
  { name: 'skaha', urlVariable: 'SKAHA_URL', defaultUrl: local(4002), sdl: workerSdl('skaha') },
  {
    name: 'preparedata',
    urlVariable: 'PREPAREDATA_URL',
    defaultUrl: local(4003),
    sdl: workerSdl('preparedata'),
  },
  { name: 'harbor', urlVariable: 'HARBOR_URL', defaultUrl: local(4004), sdl: workerSdl('harbor') },
];

/** Each subgraph's URL: its environment variable when set, else the local default. */
export function subgraphUrls(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    SUBGRAPHS.map((subgraph) => [subgraph.name, env[subgraph.urlVariable] || subgraph.defaultUrl]),
  );
}

/** The subgraphs that exist in this build, with their URLs from the environment. */
export function presentSubgraphs(env: Record<string, string | undefined>): SubgraphSource[] {
  const urls = subgraphUrls(env);
  return SUBGRAPHS.flatMap((subgraph) => {
    const sdl = subgraph.sdl();
    return sdl ? [{ name: subgraph.name, url: urls[subgraph.name]!, sdl }] : [];
  });
}
