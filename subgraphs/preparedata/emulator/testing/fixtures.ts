import { setTimeout as sleep } from 'node:timers/promises';
import type { PrepareDataEmulatorOptions } from '../index.ts';

export const MB = 1_000_000;

/**
 * A small deterministic world for tests: no jitter, a fast site, a slow one-slot site (50 MB/s),
 * a roomy area and a tiny one.
 */
export function testWorld(overrides: PrepareDataEmulatorOptions = {}): PrepareDataEmulatorOptions {
  return {
    jitter: 0,
    tickMs: 20,
    catalogue: {
      dids: [
        { namespace: 'test', name: 'small', sizeBytes: 1000, replicas: [{ rse: 'FAST' }] },
        { namespace: 'test', name: 'medium', sizeBytes: 50 * MB, replicas: [{ rse: 'SLOW' }] },
        { namespace: 'test', name: 'medium-2', sizeBytes: 50 * MB, replicas: [{ rse: 'SLOW' }] },
        { namespace: 'test', name: 'pair-1', sizeBytes: 40 * MB, replicas: [{ rse: 'PAIR' }] },
        { namespace: 'test', name: 'pair-2', sizeBytes: 40 * MB, replicas: [{ rse: 'PAIR' }] },
        { namespace: 'test', name: 'pair-3', sizeBytes: 40 * MB, replicas: [{ rse: 'PAIR' }] },
      ],
      urls: [{ url: 'https://data.example.org/cubes/cube.fits', sizeBytes: 2000 }],
    },
    sites: {
      FAST: { bandwidthBytesPerSecond: 1000 * MB, maxInFlight: 4 },
      SLOW: { bandwidthBytesPerSecond: 50 * MB, maxInFlight: 1 },
      PAIR: { bandwidthBytesPerSecond: 100 * MB, maxInFlight: 2 },
    },
    defaultSite: { bandwidthBytesPerSecond: 1000 * MB, maxInFlight: 4 },
    storageAreas: [
      { id: 'area', capacityBytes: 1000 * MB },
      { id: 'tiny', capacityBytes: 10_000 },
    ],
    ...overrides,
  };
}

/** Polls `probe` until it returns a value `done` accepts; fails naming what it last saw. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  done: (value: T) => boolean,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await sleep(intervalMs);
  }
}
