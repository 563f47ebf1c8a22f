/**
 * `npm run estimate:eval -- TRACE.jsonl [--quantile 0.9] [--json]`: replays a trace and compares
 * the estimator with the reference constants and a running mean (see ../evaluation.ts).
 */
import { evaluate, summary, type Evaluation, type Score, type Scores } from '../evaluation.ts';
import { readTrace } from '../trace.ts';
import { ACTIONS, type Observation } from '../types.ts';
import { numberOption, parseCommandLine, runCommand, UsageError } from './command.ts';

runCommand('estimate:eval', 'estimate:eval -- TRACE.jsonl [--quantile 0.9] [--json]', async () => {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: { quantile: { type: 'string', default: '0.9' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('give exactly one trace file');
  const quantile = numberOption('quantile', values.quantile, (q) => q > 0.5 && q < 1, 'in (0.5, 1)');
  const path = positionals[0]!;
  const trace: Observation[] = [];
  try {
    for await (const o of readTrace(path)) trace.push(o);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
  const result = evaluate(trace, { quantile });
  process.stdout.write(values.json ? JSON.stringify(summary(result)) + '\n' : table(result, path));
});

const percent = (x: number) => (Number.isNaN(x) ? '-' : `${(100 * x).toFixed(1)}%`);

function table(e: Evaluation, path: string): string {
  const lines = [
    `${path}: ${e.overall.n} successful actions scored, ${e.failed} failed ones excluded; bound at quantile ${e.quantile}`,
    `estimates rested on: ${Object.entries(e.levels)
      .map(([level, n]) => `${level} ${percent(n / Math.max(e.overall.n, 1))}`)
      .join(', ')}`,
    '',
    `${'predictor'.padEnd(34)}${'action'.padEnd(15)}${'n'.padStart(7)}${'coverage'.padStart(10)}${'MdAPE'.padStart(9)}${'bound/actual'.padStart(14)}`,
  ];
  const block = (label: string, s: Scores) => {
    const row = (action: string, v: Score) =>
      `${label.padEnd(34)}${action.padEnd(15)}${String(v.n).padStart(7)}${percent(v.coverage).padStart(10)}${percent(v.mdape).padStart(9)}${v.boundRatio.toFixed(2).padStart(14)}`;
    for (const action of ACTIONS) {
      const v = s.byAction[action];
      if (v) lines.push(row(action, v));
    }
    lines.push(row('overall', s.overall));
  };
  block('estimator', e);
  block('reference constants', e.baselines.constants);
  block(`running mean (bound mean+z·sd)`, e.baselines.mean);
  return lines.join('\n') + '\n';
}
