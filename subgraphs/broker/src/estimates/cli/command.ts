/**
 * What the estimation commands share: a mistake in how a command was called is reported with its
 * usage and exit code 2, any other failure (an unreadable or invalid trace) with exit code 1.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

/** node:util parseArgs, its complaints turned into usage errors. */
export function parseCommandLine<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A number option, checked: "--count must be a non-negative integer (got "-5")". */
export function numberOption(
  name: string,
  text: string,
  check: (n: number) => boolean,
  rule: string,
): number {
  const n = Number(text);
  if (text.trim() === '' || !check(n)) throw new UsageError(`--${name} must be ${rule} (got "${text}")`);
  return n;
}

export function runCommand(name: string, usage: string, main: () => Promise<void>): void {
  main().catch((error: Error) => {
    const misuse = error instanceof UsageError;
    process.stderr.write(`${name}: ${error.message}\n${misuse ? `usage: ${usage}\n` : ''}`);
    process.exitCode = misuse ? 2 : 1;
  });
}
