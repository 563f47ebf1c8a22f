import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import type { GatewayPlugin } from '@graphql-hive/gateway-runtime';
import { useRateLimit } from './rate-limit.ts';

/** What a single operation and a single caller may ask of the gateway. */
export interface LimitsConfig {
  /** Nesting depth of selections, fragments flattened. */
  maxDepth: number;
  maxAliases: number;
  /** Lexical tokens in the document: caps parse work before anything else runs. */
  maxTokens: number;
  /** Static cost (GraphQL Armor: objects 2, scalars 1, ×1.5 per level of depth). */
  maxCost: number;
  /** Operations per identity per minute; 0 turns the limit off. */
  ratePerMinute: number;
}

/**
 * The limits as plugins. Each refuses an operation before it runs, with a message that names the
 * limit and what the operation had (GraphQL Armor's `exposeLimits`), for example
 * "Query depth limit of 12 exceeded, found 14."
 */
export function limitPlugins(limits: LimitsConfig): GatewayPlugin[] {
  const plugins = [
    maxTokensPlugin({ n: limits.maxTokens, exposeLimits: true }),
    maxDepthPlugin({
      n: limits.maxDepth,
      exposeLimits: true,
      flattenFragments: true,
      ignoreIntrospection: true,
    }),
    maxAliasesPlugin({ n: limits.maxAliases, exposeLimits: true }),
    costLimitPlugin({ maxCost: limits.maxCost, exposeLimits: true, ignoreIntrospection: true }),
  ] as GatewayPlugin[];
  if (limits.ratePerMinute > 0) plugins.push(useRateLimit(limits.ratePerMinute));
  return plugins;
}
