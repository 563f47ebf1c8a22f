/** `npm start`'s portal process: builds the page when needed, then serves it. */
import { ensureBuilt } from './build.ts';
import { loadPortalConfig } from './config.ts';
import { startPortal } from './server.ts';

const config = loadPortalConfig(process.env);
await ensureBuilt((line) => console.log(line));
const portal = await startPortal(config);
console.log(`portal: ${portal.url} (gateway ${config.gatewayUrl}, ${config.authMode} identity)`);

const stop = () => void portal.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
