/** The broker process: `npm start` runs it, or `node --conditions=source --import tsx subgraphs/broker/src/main.ts`. */
import { startTracing } from '@srcnet/service-kit';
import { loadConfig } from './config.ts';
import { startBroker } from './server.ts';

const tracing = startTracing({ serviceName: 'srcnet-broker' });
const config = loadConfig();
if (config.authMode === 'dev') {
  console.warn(
    'AUTH_MODE=dev: callers name themselves with "Bearer dev:<user>"; never run this way in production',
  );
}
const running = await startBroker(config, { logger: { level: process.env.LOG_LEVEL ?? 'info' } });
console.log(
  `broker listening on ${running.url} (${config.databaseUrl.startsWith('postgres') ? 'PostgreSQL' : 'SQLite'}, ${config.redisUrl ? 'Redis' : 'in-memory'} pub/sub)`,
);

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    running
      .close()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (error) => {
          console.error(error);
          process.exit(1);
        },
      );
  });
}
