export { loadConfig, type GatewayConfig, SUPERGRAPH_PATH } from './config.ts';
export { startGateway, type RunningGateway, type StartOptions } from './server.ts';
export { composeSupergraph, CompositionError, type SubgraphSource } from './compose/compose.ts';
export { SUBGRAPHS, presentSubgraphs, subgraphUrls } from './compose/subgraphs.ts';
export type { AuthConfig } from './identity/authenticate.ts';
export type { LimitsConfig } from './limits/limits.ts';
