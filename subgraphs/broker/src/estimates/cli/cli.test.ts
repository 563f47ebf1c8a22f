import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../../..');
const dir = mkdtempSync(join(tmpdir(), 'estimates-cli-'));
const trace = join(dir, 'trace.jsonl');

async function run(script: 'trace' | 'eval' | 'history', args: string[], env: Record<string, string> = {}) {
  const entry = join(root, 'subgraphs/broker/src/estimates/cli', `${script}.ts`);
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', entry, ...args],
      { cwd: root, env: { ...process.env, ...env } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  const { code, stderr } = await run('trace', [
    '--seed',
    '808',
    '--count',
    '3000',
    '--drift',
    '0.4',
    '--out',
    trace,
  ]);
  expect(code, stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scoreKeys = ['coverage', 'mdape', 'n'];
function expectScores(scores: {
  overall: Record<string, number>;
  byAction: Record<string, Record<string, number>>;
}) {
  expect(Object.keys(scores.overall).sort()).toEqual(scoreKeys);
  expect(Object.keys(scores.byAction).sort()).toEqual(['data-staging', 'image-copy', 'session-start']);
  for (const s of [scores.overall, ...Object.values(scores.byAction)]) {
    expect(Object.keys(s).sort()).toEqual(scoreKeys);
    expect(Number.isInteger(s.n)).toBe(true);
    expect(s.n).toBeGreaterThan(0);
    expect(s.coverage).toBeGreaterThanOrEqual(0);
    expect(s.coverage).toBeLessThanOrEqual(1);
    expect(s.mdape).toBeGreaterThanOrEqual(0);
  }
}

describe('estimate:trace', () => {
  it('writes the requested number of observations, the same for the same seed', async () => {
    const lines = readFileSync(trace, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3000);
    const again = await run('trace', ['--seed', '808', '--count', '3000', '--drift', '0.4']);
    expect(again.stdout).toBe(readFileSync(trace, 'utf8'));
    const other = await run('trace', ['--seed', '809', '--count', '3000', '--drift', '0.4']);
    expect(other.stdout).not.toBe(again.stdout);
  });

  it('refuses a bad option, naming it', async () => {
    const { code, stderr } = await run('trace', ['--count=-5']);
    expect(code).toBe(2);
    expect(stderr).toContain('--count must be a non-negative integer (got "-5")');
  });
});

describe('estimate:eval', () => {
  it('prints exactly one JSON object of the agreed shape with --json', async () => {
    const { code, stdout } = await run('eval', [trace, '--json', '--quantile', '0.8']);
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toHaveLength(1);
    const result = JSON.parse(stdout);
    expect(Object.keys(result).sort()).toEqual(['baselines', 'byAction', 'overall', 'quantile']);
    expect(result.quantile).toBe(0.8);
    expectScores(result);
    expect(Object.keys(result.baselines).sort()).toEqual(['constants', 'mean']);
    for (const baseline of Object.values(result.baselines)) {
      expect(Object.keys(baseline as object).sort()).toEqual(['byAction', 'overall']);
    }
    expectScores(result.baselines.constants);
    expectScores(result.baselines.mean);
    expect(result.overall.n).toBe(result.baselines.mean.overall.n);
  });

  it('prints a table by default', async () => {
    const { code, stdout } = await run('eval', [trace]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/coverage\s+MdAPE/);
    expect(stdout).toMatch(/^reference constants\s+session-start/m);
    expect(stdout).toMatch(/^running mean .*overall/m);
  });

  it('names the file, line and rule of a bad trace', async () => {
    const bad = join(dir, 'bad.jsonl');
    const first = readFileSync(trace, 'utf8').split('\n')[0]!;
    writeFileSync(bad, `${first}\n${first.replace(/"durationSeconds":[^,]+/, '"durationSeconds":-2')}\n`);
    const { code, stderr } = await run('eval', [bad, '--json']);
    expect(code).toBe(1);
    expect(stderr).toContain(`${bad}: line 2: durationSeconds must be a non-negative number`);
  });
});

describe('estimate:export and estimate:import', () => {
  // The broker's own setting: SQLITE_PATH unless DATABASE_URL is set.
  const env = (name: string) => ({ SQLITE_PATH: join(dir, name), DATABASE_URL: '' });

  it('import a trace into the broker store, once however often, and export it back', async () => {
    const imported = await run('history', ['import', trace], env('history.sqlite'));
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain('3000 observations read, 3000 added');
    const again = await run('history', ['import', trace], env('history.sqlite'));
    expect(again.stderr).toContain('3000 observations read, 0 added');

    const out = join(dir, 'exported.jsonl');
    const exported = await run('history', ['export', '--out', out], env('history.sqlite'));
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toContain(`exported 3000 observations from ${join(dir, 'history.sqlite')}`);
    const sorted = (text: string) => text.trimEnd().split('\n').sort();
    expect(sorted(readFileSync(out, 'utf8'))).toEqual(sorted(readFileSync(trace, 'utf8')));
    // Without --out, to standard output.
    const piped = await run('history', ['export'], env('history.sqlite'));
    expect(sorted(piped.stdout)).toEqual(sorted(readFileSync(trace, 'utf8')));
  });

  it('name the file, line and rule of a bad trace and import none of it', async () => {
    const bad = join(dir, 'bad-import.jsonl');
    const [first, second] = readFileSync(trace, 'utf8').split('\n');
    writeFileSync(bad, `${first}\n${second!.replace(/"outcome":"\w+"/, '"outcome":"maybe"')}\n`);
    const refused = await run('history', ['import', bad], env('bad.sqlite'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`estimate:import: ${bad}: line 2: outcome must be "ok" or "failed"`);
    const empty = await run('history', ['export'], env('bad.sqlite'));
    expect(empty.stdout).toBe('');
    const misuse = await run('history', ['import'], env('bad.sqlite'));
    expect(misuse.code).toBe(2);
    expect(misuse.stderr).toContain('give exactly one trace file to import');
  });
});
