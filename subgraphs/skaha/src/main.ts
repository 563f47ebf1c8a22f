import { startTracing } from '@srcnet/service-kit';
import { loadConfig } from './config.ts';
import { startSkahaWorker } from './worker.ts';

/** The Skaha worker and subgraph (PORT, default 4002); every setting is in docs/skaha.md. */
const tracing = startTracing({ serviceName: 'srcnet-skaha' });
const worker = await startSkahaWorker(loadConfig(process.env));

const stop = () => {
  worker
    .close()
    .then(() => tracing.shutdown())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
