/**
 * The prepareData emulator as a process: `node --conditions=source --import tsx
 * subgraphs/preparedata/emulator/main.ts`, configured by environment (see config.ts).
 */
import { pino } from 'pino';
import { optionsFromEnv } from './config.ts';
import { startPrepareDataEmulator } from './index.ts';

const logger = pino({ name: 'preparedata-emulator', level: process.env['LOG_LEVEL'] ?? 'info' });

try {
  const options = optionsFromEnv(process.env);
  const emulator = await startPrepareDataEmulator({ ...options, logger });
  logger.info(
    {
      url: emulator.url,
      dataRoot: emulator.dataRoot,
      timeScale: options.timeScale ?? 1,
      devTokens: options.allowDevTokens,
      faults: options.faults,
    },
    'prepareData emulator listening',
  );
  const stop = async (signal: string) => {
    logger.info({ signal }, 'prepareData emulator stopping');
    await emulator.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
} catch (error) {
  logger.fatal({ err: error }, 'prepareData emulator could not start');
  process.exit(1);
}
