/**
 * `npm start`: runs every service of the stack as its own process on the embedded defaults
 * (SQLite files under data/, in-memory pub/sub, the backend emulators), waits until each answers
 * its health check, prints where to find them, and stops them all on Ctrl-C.
 */
import { mkdirSync } from 'node:fs';
import { launchStack, type LaunchedStack } from './launch.ts';
import { PORTS, stackServices } from './services.ts';

const specs = stackServices();
mkdirSync('data', { recursive: true });
console.log(
  'Starting the SRCNet execution stack (SQLite under data/, in-memory pub/sub, backend emulators):',
);
for (const spec of specs) console.log(`  ${spec.name.padEnd(22)} :${spec.port}  ${spec.entry}`);

let stack: LaunchedStack | undefined;
let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await stack?.stop();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  stack = await launchStack(specs, {
    output: 'inherit',
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
    onExit: (spec, reason) => {
      console.error(`${spec.name} stopped (${reason}); stopping the stack`);
      void stop(1);
    },
  });
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

const gateway = `http://127.0.0.1:${PORTS.gateway}/graphql`;
console.log(`
Ready:
  Science portal               http://127.0.0.1:${PORTS.portal}/  (request, accept and watch steps live)
  GraphQL gateway and sandbox  ${gateway}  (open it in a browser; subscriptions over ws://127.0.0.1:${PORTS.gateway}/graphql)
  IVOA ExecutionBroker REST    http://127.0.0.1:${PORTS.broker}/  (POST /requests, /direct; GET /sessions/{id})
  Metrics                      http://127.0.0.1:<port>/metrics on every service; /healthz and /readyz too
  Subgraphs                    broker :${PORTS.broker}, skaha :${PORTS.skaha}, preparedata :${PORTS.preparedata}, harbor :${PORTS.harbor}
  Emulators                    Skaha :${PORTS.skahaEmulator}, prepareData :${PORTS.preparedataEmulator}, Harbor :${PORTS.harborEmulator}
Identity is dev mode: send "Authorization: Bearer dev:<user>". Ctrl-C stops everything.`);
