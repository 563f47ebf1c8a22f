/**
 * The broker's stored estimation history as trace files, in the database the broker's settings
 * name (DATABASE_URL, else SQLITE_PATH, as docs/broker.md says):
 *
 *   npm run estimate:export -- [--out FILE]   every stored observation, JSON Lines (standard output without --out)
 *   npm run estimate:import -- FILE           adds a trace's observations; checked line by line, none twice
 *
 * A running broker learns imported observations when it next starts.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { databaseUrlOf } from '../../config.ts';
import { engineMigrations, type EngineTables } from '../../engine/index.ts';
import { stepMigrations, type BrokerTables } from '../../steps/tables.ts';
import { exportObservations, importObservations } from '../../steps/traces.ts';
import { openStore } from '../../store/index.ts';
import { parseCommandLine, runCommand, UsageError } from './command.ts';

const USAGE = 'estimate:export -- [--out FILE] | estimate:import -- FILE';

/** Where the history is, without a password. */
function describe(url: string): string {
  if (!/^postgres(ql)?:/.test(url)) return url;
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  return shown.toString();
}

const name = ['export', 'import'].includes(process.argv[2] ?? '')
  ? `estimate:${process.argv[2]}`
  : 'estimate:history';

runCommand(name, USAGE, async () => {
  const { values, positionals } = parseCommandLine({
    allowPositionals: true,
    options: { out: { type: 'string' } },
  });
  const [command, ...files] = positionals;
  if (command !== 'export' && command !== 'import') throw new UsageError('say export or import');
  if (command === 'export' && files.length > 0) throw new UsageError('export takes no file; use --out');
  if (command === 'import' && (files.length !== 1 || values.out))
    throw new UsageError('give exactly one trace file to import');

  const url = databaseUrlOf(process.env);
  const store = await openStore<BrokerTables & EngineTables>({
    url,
    migrations: [engineMigrations, stepMigrations],
    poolSize: 1,
  });
  try {
    if (command === 'export') {
      const out = values.out ? createWriteStream(values.out) : process.stdout;
      const n = await exportObservations(store.db as never, out);
      if (values.out) {
        out.end();
        await finished(out);
      }
      process.stderr.write(
        `exported ${n} observations from ${describe(url)}${values.out ? ` to ${values.out}` : ''}\n`,
      );
      return;
    }
    const path = files[0]!;
    const { read, added } = await importObservations(store.db as never, path).catch((error: Error) => {
      throw new Error(`${path}: ${error.message}`, { cause: error });
    });
    process.stderr.write(
      `${path}: ${read} observations read, ${added} added to ${describe(url)}, ${read - added} already there\n`,
    );
  } finally {
    await store.close();
  }
});
