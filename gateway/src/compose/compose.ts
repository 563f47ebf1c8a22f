import { composeServices, compositionHasErrors } from '@theguild/federation-composition';
import { parse } from 'graphql';

/** One subgraph as composition sees it. */
export interface SubgraphSource {
  name: string;
  url: string;
  sdl: string;
}

export class CompositionError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(`the subgraphs do not compose:\n  ${errors.join('\n  ')}`);
    this.name = 'CompositionError';
  }
}

/** The supergraph SDL of the given subgraphs, or a CompositionError naming every problem. */
export function composeSupergraph(subgraphs: readonly SubgraphSource[]): string {
  const services = subgraphs.map((subgraph) => {
    try {
      return { name: subgraph.name, url: subgraph.url, typeDefs: parse(subgraph.sdl) };
    } catch (error) {
      throw new CompositionError([`${subgraph.name}: ${(error as Error).message}`]);
    }
  });
  const result = composeServices(services);
  if (compositionHasErrors(result)) throw new CompositionError(result.errors.map((error) => error.message));
  return `${result.supergraphSdl.trim()}\n`;
}
