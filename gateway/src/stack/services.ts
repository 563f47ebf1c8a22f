/**
 * The processes of the stack, in start stages. Each reads its port, its database file and the URLs
 * of the others from the environment, so this table is the one place that wires the stack
 * together on one machine: `npm start` runs it on the default ports, the e2e scenarios on free ones.
 */
import { join } from 'node:path';

export interface ServiceSpec {
  name: string;
  /** Entry file, relative to the repository root. */
  entry: string;
  port: number;
  /** Path answered with 200 once the service can take work. */
  health: string;
  /** Services of one stage start side by side; a stage starts once the one before is healthy. */
  stage: number;
  env: Record<string, string>;
}

export const PORTS = {
  gateway: 4000,
  broker: 4001,
  skaha: 4002,
  preparedata: 4003,
  harbor: 4004,
  portal: 4005,
  skahaEmulator: 4102,
  preparedataEmulator: 4103,
  harborEmulator: 4104,
};
export type Ports = typeof PORTS;

const url = (port: number, path = '') => `http://127.0.0.1:${port}${path}`;

/** The environment that points a gateway at the stack's subgraphs. */
export function gatewayEnv(ports: Ports, port = ports.gateway): Record<string, string> {
  return {
    GATEWAY_PORT: String(port),
    BROKER_URL: url(ports.broker, '/graphql'),
    SKAHA_URL: url(ports.skaha, '/graphql'),
    PREPAREDATA_URL: url(ports.preparedata, '/graphql'),
    HARBOR_URL: url(ports.harbor, '/graphql'),
  };
}

/** The environment that runs a broker with the stack's workers. */
export function brokerEnv(ports: Ports, dataDir: string, port = ports.broker): Record<string, string> {
  return {
    BROKER_PORT: String(port),
    PUBLIC_URL: url(port),
    SQLITE_PATH: join(dataDir, 'broker.sqlite'),
    SKAHA_WORKER_URL: url(ports.skaha),
    PREPAREDATA_WORKER_URL: url(ports.preparedata),
    HARBOR_WORKER_URL: url(ports.harbor),
  };
}

/** The whole stack: emulators, workers, broker, gateway, portal, with data files under `dataDir`. */
export function stackServices(ports: Ports = PORTS, dataDir = 'data'): ServiceSpec[] {
  return [
    {
      name: 'skaha-emulator',
      entry: 'subgraphs/skaha/emulator/main.ts',
      port: ports.skahaEmulator,
      health: '/_emulator/stats',
      stage: 0,
      env: { SKAHA_EMULATOR_PORT: String(ports.skahaEmulator) },
    },
    {
      name: 'preparedata-emulator',
      entry: 'subgraphs/preparedata/emulator/main.ts',
      port: ports.preparedataEmulator,
      health: '/_emulator/stats',
      stage: 0,
      env: { PREPAREDATA_EMULATOR_PORT: String(ports.preparedataEmulator) },
    },
    {
      name: 'harbor-emulator',
      entry: 'subgraphs/harbor/emulator/main.ts',
      port: ports.harborEmulator,
      health: '/_emulator/stats',
      stage: 0,
      env: { HARBOR_EMULATOR_PORT: String(ports.harborEmulator) },
    },
    {
      name: 'skaha',
      entry: 'subgraphs/skaha/src/main.ts',
      port: ports.skaha,
      health: '/readyz',
      stage: 1,
      env: {
        PORT: String(ports.skaha),
        SKAHA_SQLITE_PATH: join(dataDir, 'skaha.sqlite'),
        SKAHA_API_URL: url(ports.skahaEmulator, '/skaha/v1'),
        SKAHA_WORKER_PUBLIC_URL: url(ports.skaha),
        HARBOR_WORKER_URL: url(ports.harbor),
        // Sessions launch from the site Harbor's copies, which are not in Skaha's public cache:
        // Skaha pulls them with these credentials (the emulated Harbor's own defaults).
        SKAHA_REGISTRY_USERNAME: 'admin',
        SKAHA_REGISTRY_SECRET: 'Harbor12345',
      },
    },
    {
      name: 'preparedata',
      entry: 'subgraphs/preparedata/src/main.ts',
      port: ports.preparedata,
      health: '/readyz',
      stage: 1,
      env: {
        PORT: String(ports.preparedata),
        SQLITE_PATH: join(dataDir, 'preparedata.sqlite'),
        PUBLIC_URL: url(ports.preparedata),
        PREPAREDATA_URL: url(ports.preparedataEmulator),
      },
    },
    {
      name: 'harbor',
      entry: 'subgraphs/harbor/src/main.ts',
      port: ports.harbor,
      health: '/readyz',
      stage: 1,
      env: {
        PORT: String(ports.harbor),
        HARBOR_SQLITE_PATH: join(dataDir, 'harbor.sqlite'),
        HARBOR_URL: url(ports.harborEmulator),
        HARBOR_WORKER_PUBLIC_URL: url(ports.harbor),
        // On CANFAR the site's Harbor is images.canfar.net, the one registry Skaha trusts; the
        // emulated Harbor plays that part, so sessions launch from the copy it made.
        HARBOR_REGISTRY_HOST: 'images.canfar.net',
        HARBOR_VERIFY_DIGESTS: 'false',
      },
    },
    {
      name: 'broker',
      entry: 'subgraphs/broker/src/main.ts',
      port: ports.broker,
      health: '/readyz',
      stage: 2,
      env: brokerEnv(ports, dataDir),
    },
    {
      name: 'gateway',
      entry: 'gateway/src/main.ts',
      port: ports.gateway,
      health: '/readyz',
      stage: 3,
      env: gatewayEnv(ports),
    },
    {
      // The page; it builds portal/dist first when that is missing or stale.
      name: 'portal',
      entry: 'portal/server/main.ts',
      port: ports.portal,
      health: '/healthz',
      stage: 4,
      env: { PORTAL_PORT: String(ports.portal), PORTAL_GATEWAY_URL: url(ports.gateway, '/graphql') },
    },
  ];
}
