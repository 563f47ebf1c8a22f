import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    conditions: ['source'],
    // graphql 16 ships CommonJS and ESM builds; Vite would give our code the ESM one while the
    // libraries loaded by Node get the CommonJS one, and a GraphQLError from one is not an
    // instance of the other. Node itself loads the CommonJS build, so tests do the same.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
