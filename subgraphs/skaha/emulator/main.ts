import { pino } from 'pino';
import { optionsFromEnv, startSkahaEmulator } from './index.ts';

/**
 * Standalone Skaha emulator: SKAHA_EMULATOR_PORT (default 4102) and the other SKAHA_EMULATOR_* /
 * SKAHA_FAULT_* variables described in emulator/config.ts and @srcnet/service-kit/faults.
 */
const logger = pino({ name: 'skaha-emulator', level: process.env.LOG_LEVEL ?? 'info' });
const options = optionsFromEnv(process.env);
const emulator = await startSkahaEmulator({ ...options, logger });
logger.info(
  { api: emulator.apiUrl, faults: options.faults ?? 'none', devTokens: options.allowDevTokens ?? true },
  'skaha emulator listening; any "Bearer dev:<user>" token is accepted unless SKAHA_EMULATOR_ALLOW_DEV_TOKENS=false',
);

const stop = (signal: string) => {
  logger.info({ signal }, 'stopping');
  emulator.close().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error({ err: error }, 'close failed');
      process.exit(1);
    },
  );
};
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
