/**
 * `npm run bench -- NAME [ARGS]`: runs bench/NAME/main.ts. Each benchmark prints a readable table
 * and, as its last line, one JSON object with its figures.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

const [name, ...args] = process.argv.slice(2);
const here = import.meta.dirname;
const available = readdirSync(here, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(resolve(here, entry.name, 'main.ts')))
  .map((entry) => entry.name);
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [ARGS]\nbenchmarks: ${available.join(', ')}`);
  process.exit(2);
}
const result = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', resolve(here, name, 'main.ts'), ...args],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
