/** The prepareData worker process (port 4003 by default); configuration from the environment. */
import { startTracing } from '@srcnet/service-kit';
import { loadConfig } from './config.ts';
import { startPrepareDataWorker } from './worker.ts';

const tracing = startTracing({ serviceName: 'srcnet-preparedata' });
const running = await startPrepareDataWorker(loadConfig(process.env));
const stop = () => {
  void running
    .close()
    .then(() => tracing.shutdown())
    .then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
