import { defaultClientConditions, defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  // The client package is bundled from its TypeScript source, as the services run it.
  resolve: { conditions: ['source', ...defaultClientConditions] },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  // `npm run dev -w portal` (hot reload on :5173) asks a running portal server for its config and
  // document reader.
  server: {
    proxy: { '/config.json': 'http://127.0.0.1:4005', '/api': 'http://127.0.0.1:4005' },
  },
});
