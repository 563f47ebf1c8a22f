import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, type BrokerConfig } from '../src/config.ts';
import { startBroker, type RunningBroker } from '../src/server.ts';

export const EXAMPLES = resolve(import.meta.dirname, '../../../../shared/reference/calycopis-examples');
export const exampleText = (name: string) => readFileSync(join(EXAMPLES, name), 'utf8');

/**
 * A broker on a random port with its own SQLite file (unless `SQLITE_PATH` names one), fast
 * simulated preparation, 1-second booking blocks and no preparation estimate (unless
 * `PREPARATION_ESTIMATE` says otherwise).
 */
export async function testBroker(
  env: Record<string, string> = {},
  tune: (config: BrokerConfig) => void = () => {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'broker-test-'));
  const config = loadConfig({
    BROKER_PORT: '0',
    SQLITE_PATH: join(dir, 'broker.sqlite'),
    BOOKING_BLOCK_SECONDS: '1',
    SIMULATION_PREPARE_SECONDS: 'executable=0.02,compute=0.02,storage=0.01,data=0.03',
    SIMULATION_RUN_SECONDS: '0.05',
    SIMULATION_RELEASE_SECONDS: '0.01',
    PREPARATION_ESTIMATE: 'zero',
    ...env,
  });
  tune(config);
  const running: RunningBroker = await startBroker(config);
  return {
    ...running,
    config,
    async stop() {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** A container step that runs to completion on the simulated platform. */
export const containerStep = (duration = 'PT10M') => ({
  executable: {
    kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml',
    image: {
      locations: ['ghcr.io/zarquan/heliophorus-cantliei:sha-831ee57'],
      digest: `sha256:${'b'.repeat(64)}`,
    },
  },
  schedule: { requested: { duration } },
});

/** The phases a container step passes through, leaving out WAITING (there when its booked start was still ahead). */
export const CONTAINER_PHASES = [
  'OFFERED',
  'ACCEPTED',
  'PREPARING',
  'AVAILABLE',
  'RUNNING',
  'RELEASING',
  'COMPLETED',
];
export const phasesOf = (history: { to: string }[]) =>
  history.map((h) => h.to).filter((phase) => phase !== 'WAITING');
