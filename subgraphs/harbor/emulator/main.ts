/**
 * Runs the Harbor emulator on its own: `node --conditions=source --import tsx
 * subgraphs/harbor/emulator/main.ts`. Listens on HARBOR_EMULATOR_PORT (default 4104) with the
 * default projects and images; see optionsFromEnv for the other variables.
 */
import { DEFAULT_ADMIN, defaultOptions, optionsFromEnv, startHarborEmulator } from './index.ts';

const defaults = defaultOptions();
const fromEnv = optionsFromEnv(process.env);
const emulator = await startHarborEmulator({
  ...defaults,
  ...fromEnv,
  timing: { ...defaults.timing, ...fromEnv.timing },
  logger: process.env.HARBOR_EMULATOR_LOG === 'true',
});
process.stdout.write(
  `Harbor emulator on ${emulator.url} (API ${emulator.url}/api/v2.0, registry ${emulator.url}/v2/); ` +
    `admin credentials ${DEFAULT_ADMIN.username} / ${process.env.HARBOR_EMULATOR_ADMIN_PASSWORD ? '(from HARBOR_EMULATOR_ADMIN_PASSWORD)' : DEFAULT_ADMIN.password}\n`,
);

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void emulator.close().then(() => process.exit(0));
  });
