import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { composeSupergraph, CompositionError } from '../src/compose/compose.ts';
import { presentSubgraphs } from '../src/compose/subgraphs.ts';
import { SUPERGRAPH_PATH } from '../src/config.ts';

describe('npm run compose', () => {
  it('gateway/supergraph.graphql is what composing the subgraphs gives now (run npm run compose if not)', () => {
    expect(readFileSync(SUPERGRAPH_PATH, 'utf8')).toBe(composeSupergraph(presentSubgraphs({})));
  });

  it('takes subgraph URLs from the environment', () => {
    const sdl = composeSupergraph(presentSubgraphs({ BROKER_URL: 'http://broker.example:9/graphql' }));
    expect(sdl).toContain('url: "http://broker.example:9/graphql"');
  });

  it('names the subgraph and the conflict when subgraphs do not compose', () => {
    const a =
      'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"]) type Query { a: Int }';
    const b =
      'extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"]) type Query { a: String }';
    expect(() =>
      composeSupergraph([
        { name: 'one', url: 'http://one', sdl: a },
        { name: 'two', url: 'http://two', sdl: b },
      ]),
    ).toThrow(CompositionError);
    expect(() => composeSupergraph([{ name: 'bad', url: 'http://bad', sdl: 'type {' }])).toThrow(
      /^.*bad: Syntax Error/m,
    );
  });
});
