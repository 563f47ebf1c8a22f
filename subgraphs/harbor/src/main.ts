/** The Harbor worker process (port 4004 by default); configuration from the environment. */
import { startTracing } from '@srcnet/service-kit';
import { loadConfig } from './config.ts';
import { startHarborWorker } from './worker.ts';

const tracing = startTracing({ serviceName: 'srcnet-harbor' });
const running = await startHarborWorker(loadConfig(process.env));
const stop = () => {
  void running
    .close()
    .then(() => tracing.shutdown())
    .then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
