/**
 * `npm run compose`: composes gateway/supergraph.graphql from the SDL of every subgraph that exists
 * in this build, with the subgraph URLs from the environment (BROKER_URL, SKAHA_URL, …).
 */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { SUPERGRAPH_PATH } from '../config.ts';
import { composeSupergraph } from './compose.ts';
import { SUBGRAPHS, presentSubgraphs } from './subgraphs.ts';

const present = presentSubgraphs(process.env);
writeFileSync(SUPERGRAPH_PATH, composeSupergraph(present));
console.log(`wrote ${relative(process.cwd(), SUPERGRAPH_PATH)} from ${present.length} subgraph(s):`);
for (const subgraph of SUBGRAPHS) {
  const found = present.find((item) => item.name === subgraph.name);
  console.log(`  ${subgraph.name.padEnd(12)} ${found ? found.url : '(no SDL yet)'}`);
}
