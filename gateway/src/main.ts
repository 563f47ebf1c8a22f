/** The gateway process: `node --conditions=source --import tsx gateway/src/main.ts`. */
import { startTracing } from '@srcnet/service-kit';
import { loadConfig } from './config.ts';
import { startGateway } from './server.ts';

const tracing = startTracing({ serviceName: 'srcnet-gateway' });
const config = loadConfig();
if (config.auth.mode === 'dev') {
  console.warn(
    '\n*** AUTH_MODE=dev: "Authorization: Bearer dev:<user>" makes anyone any user, and no header means user "dev".' +
      '\n*** Never expose this gateway; set AUTH_MODE=jwt with JWT_JWKS_URL or JWT_SECRET for real use.\n',
  );
}
const level = process.env.LOG_LEVEL;
const gateway = await startGateway(config, {
  logging: level === 'debug' || level === 'warn' || level === 'error' ? level : 'info',
});
console.log(
  `gateway listening on ${gateway.url} (graphql-ws on ${gateway.wsUrl}; sandbox ${config.sandbox ? 'on' : 'off'}; ` +
    `change feed: ${config.redisUrl ? 'Redis pub/sub' : `the broker at ${config.subgraphUrls.broker}`})`,
);

// The runtime disposes itself on SIGTERM but leaves the process running; stop it here.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    gateway
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
