import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { openStore } from '../store/index.ts';
import { scratchDatabase } from '../store/scratch.ts';
import { effectsMigrations, waitFor, type EffectsTables } from './fixtures/effects.ts';
import { enqueue } from './index.ts';
import { engineMigrations } from './tables.ts';

const CHAINS = 100;
const STAGES = 10;
const worker = fileURLToPath(new URL('./fixtures/chain-worker.ts', import.meta.url));
const scratch = await scratchDatabase('sqlite');
const log = join(scratch.url, '..', 'deliveries.log');
afterAll(() => scratch.drop());

function run(): { exited: Promise<number | string | null>; kill(): void; output(): string } {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', worker, scratch.url, log],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  return { exited, kill: () => child.kill('SIGKILL'), output: () => output };
}

it(`finishes ${CHAINS} chains of ${STAGES} stages with each effect applied once, across a SIGKILL`, async () => {
  const store = await openStore<EffectsTables>({
    url: scratch.url,
    migrations: [engineMigrations, effectsMigrations],
  });
  await store.transaction(async (tx) => {
    for (let chain = 0; chain < CHAINS; chain++) {
      await enqueue(tx, { kind: 'stage', key: `stage:${chain}:1`, payload: { chain, stage: 1 } });
    }
  });
  await store.close();

  const reader = new Database(scratch.url, { readonly: true });
  const applied = () => (reader.prepare('select count(*) as n from effects').get() as { n: number }).n;
  const first = run();
  await waitFor(() => applied() >= 300, 20_000);
  first.kill();
  expect(await first.exited).toBe('SIGKILL');
  const atKill = applied();
  expect(atKill).toBeLessThan(CHAINS * STAGES);

  const second = run();
  const code = await second.exited;
  expect(code, second.output()).toBe(0);

  const effects = reader.prepare('select count(*) as n, sum(applied) as applied from effects').get();
  expect(effects).toEqual({ n: CHAINS * STAGES, applied: CHAINS * STAGES });
  const stages = new Map<string, number>();
  for (const { key } of reader.prepare('select key from effects').all() as { key: string }[]) {
    const chain = key.split(':')[1]!;
    stages.set(chain, (stages.get(chain) ?? 0) + 1);
  }
  expect(stages.size).toBe(CHAINS);
  expect([...stages.values()].every((n) => n === STAGES)).toBe(true);
  const jobs = reader
    .prepare('select kind, state, count(*) as n from jobs group by kind, state order by kind')
    .all();
  expect(jobs).toEqual([
    { kind: 'announce', state: 'done', n: CHAINS * STAGES },
    { kind: 'stage', state: 'done', n: CHAINS * STAGES },
  ]);
  const announced = new Set(readFileSync(log, 'utf8').trim().split('\n'));
  expect(announced.size).toBe(CHAINS * STAGES);
  const byWorker = reader.prepare('select count(distinct by) as workers from effects').get();
  expect(byWorker).toEqual({ workers: 2 });
  reader.close();
}, 30_000);
