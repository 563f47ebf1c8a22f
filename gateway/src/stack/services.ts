/**
 * The processes `npm start` runs, in start order. Each reads its port and the URLs of the others
 * from the environment, so this table is the one place that wires the stack together on one machine.
 */
export interface ServiceSpec {
  name: string;
  /** Entry file, relative to the repository root. */
  entry: string;
  port: number;
  /** Path answered with 200 once the service can take work. */
  health: string;
  env: Record<string, string>;
}

const url = (port: number, path = '') => `http://127.0.0.1:${port}${path}`;

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
} as const;

export const SERVICES: ServiceSpec[] = [
  {
    name: 'skaha-emulator',
    entry: 'subgraphs/skaha/emulator/main.ts',
    port: PORTS.skahaEmulator,
    health: '/_emulator/stats',
    env: { SKAHA_EMULATOR_PORT: String(PORTS.skahaEmulator) },
  },
  {
    name: 'preparedata-emulator',
    entry: 'subgraphs/preparedata/emulator/main.ts',
    port: PORTS.preparedataEmulator,
    health: '/_emulator/stats',
    env: { PREPAREDATA_EMULATOR_PORT: String(PORTS.preparedataEmulator) },
  },
  {
    name: 'harbor-emulator',
    entry: 'subgraphs/harbor/emulator/main.ts',
    port: PORTS.harborEmulator,
    health: '/_emulator/stats',
    env: { HARBOR_EMULATOR_PORT: String(PORTS.harborEmulator) },
  },
  {
    name: 'broker',
    entry: 'subgraphs/broker/src/main.ts',
    port: PORTS.broker,
    health: '/readyz',
    env: { BROKER_PORT: String(PORTS.broker), PUBLIC_URL: url(PORTS.broker) },
  },
];
