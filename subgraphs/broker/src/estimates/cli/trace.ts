/**
 * `npm run estimate:trace -- [--seed N] [--count N] [--drift X] [--out FILE]`: writes a synthetic
 * estimation trace as JSON Lines (to standard output without --out).
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { generateTrace } from '../synthetic.ts';
import { writeTrace } from '../trace.ts';
import { numberOption, parseCommandLine, runCommand } from './command.ts';

runCommand(
  'estimate:trace',
  'estimate:trace -- [--seed N] [--count N] [--drift X] [--out FILE]',
  async () => {
    const { values } = parseCommandLine({
      options: {
        seed: { type: 'string', default: '1' },
        count: { type: 'string', default: '20000' },
        drift: { type: 'string', default: '0.5' },
        out: { type: 'string' },
      },
    });
    const trace = generateTrace({
      seed: numberOption('seed', values.seed, Number.isSafeInteger, 'an integer'),
      count: numberOption(
        'count',
        values.count,
        (n) => Number.isSafeInteger(n) && n >= 0,
        'a non-negative integer',
      ),
      drift: numberOption(
        'drift',
        values.drift,
        (n) => Number.isFinite(n) && n >= 0,
        'a non-negative number',
      ),
    });
    if (!values.out) return writeTrace(trace, process.stdout);
    const out = createWriteStream(values.out);
    await writeTrace(trace, out);
    out.end();
    await finished(out);
    process.stderr.write(`wrote ${trace.length} observations to ${values.out}\n`);
  },
);
