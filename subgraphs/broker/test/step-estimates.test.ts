/**
 * A step's `estimates`: the preparation estimate its offered start rested on, kept with the step.
 * The history comes in as a trace (estimate:import's code), the offers and the field go through
 * the broker subgraph's HTTP /graphql, and the figures outlive a restart that taught the
 * estimator otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createExecutionClient,
  ExecutionStepDocument,
  RequestOffersDocument,
} from '@srcnet/execution-step-client';
import { KINDS } from '@srcnet/execution-step-schema';
import { engineMigrations } from '../src/engine/tables.ts';
import { formatObservation, type Observation } from '../src/estimates/index.ts';
import { parseDuration } from '../src/offers/time.ts';
import { stepMigrations, type BrokerTables } from '../src/steps/tables.ts';
import { importObservations } from '../src/steps/traces.ts';
import { openStore } from '../src/store/index.ts';
import { containerStep, testBroker } from './harness.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'broker-step-estimates-'));
const path = join(dir, 'broker.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Stagings from a slow and a fast site, 5 s latency plus size over bandwidth, an hour back. */
function stagings(rates: Record<string, number>, repeats: number): Observation[] {
  const out: Observation[] = [];
  let minute = 0;
  const begin = Date.now() - 3 * 3_600_000;
  for (const [site, rate] of Object.entries(rates))
    for (let i = 0; i < repeats; i++)
      for (const bytes of [25 * MiB, GiB, 25 * GiB])
        out.push({
          action: 'data-staging',
          params: { bytes, sourceSite: site, targetStorage: '', inFlight: 0 },
          startedAt: new Date(begin + minute++ * 60_000).toISOString(),
          durationSeconds: 5 + bytes / rate,
          outcome: 'ok',
        });
  return out;
}

async function importHistory(history: Observation[]) {
  const store = await openStore<BrokerTables>({ url: path, migrations: [engineMigrations, stepMigrations] });
  try {
    const trace = Readable.from([history.map(formatObservation).join('\n')]);
    expect((await importObservations(store.db, trace)).added).toBe(history.length);
  } finally {
    await store.close();
  }
}

const request = (bytes: number, site: string) => ({
  ...containerStep(),
  data: [
    {
      kind: KINDS.SkaoDataResource!,
      meta: { name: 'visibilities' },
      skao: { namespace: 'ska', objectname: 'vis.ms', datasize: bytes, replicas: [{ rsename: site }] },
    },
  ],
});

type Broker = Awaited<ReturnType<typeof testBroker>>;
const client = (broker: Broker) =>
  createExecutionClient({ url: `${broker.url}/graphql`, token: 'dev:alice' });

async function offer(broker: Broker, bytes: number, site: string) {
  const { requestOffers } = await client(broker).request(RequestOffersDocument, {
    request: request(bytes, site) as never,
  });
  expect(requestOffers.result).toBe('YES');
  const { executionStep } = await client(broker).request(ExecutionStepDocument, {
    id: requestOffers.offers[0]!.id,
  });
  return executionStep!;
}
type Step = Awaited<ReturnType<typeof offer>>;

const staging = (step: Step) => step.estimates!.actions.find((a) => a.action === 'data-staging')!;
const availableStart = (step: Step) => Date.parse(step.schedule!.available!.start!.split('/')[0]!);

describe('ExecutionStep.estimates', () => {
  let slow: Step;

  it('says what each action and the whole step were expected to take, as the offered start used it', async () => {
    await importHistory(stagings({ SLOW_RSE: 30e6, FAST_RSE: 1e9 }, 4));
    const broker = await testBroker({ PREPARATION_ESTIMATE: 'learned', SQLITE_PATH: path });
    try {
      slow = await offer(broker, 25 * GiB, 'SLOW_RSE');
      const fast = await offer(broker, 25 * MiB, 'FAST_RSE');

      for (const step of [slow, fast]) {
        const estimates = step.estimates!;
        expect(estimates.quantile).toBe(0.9);
        expect(estimates.actions.map((a) => a.action).sort()).toEqual([
          'data-staging',
          'image-copy',
          'session-start',
        ]);
        // Each of the three components claims more than the step: a union bound.
        for (const action of estimates.actions) expect(action.quantile).toBeCloseTo(1 - 0.1 / 3, 6);
        // The offered start is the bound's ready time; preparation is planned for the bound.
        expect(Date.parse(estimates.readyBoundAt)).toBe(availableStart(step));
        expect(parseDuration(step.schedule!.preparing!.duration!)! / 1000).toBeCloseTo(
          estimates.boundSeconds,
          0,
        );
        const preparing = Date.parse(step.schedule!.preparing!.start!);
        expect(Date.parse(estimates.readyMedianAt) - preparing).toBeCloseTo(
          estimates.medianSeconds * 1000,
          -1,
        );
        expect(estimates.medianSeconds).toBeLessThanOrEqual(estimates.boundSeconds);
        // Data staging then the session start lie on the critical path.
        const session = estimates.actions.find((a) => a.action === 'session-start')!;
        expect(estimates.boundSeconds).toBeGreaterThanOrEqual(
          staging(step).boundSeconds + session.boundSeconds,
        );
      }

      expect(staging(slow)).toMatchObject({
        role: 'data',
        params: { bytes: 25 * GiB, sourceSite: 'SLOW_RSE', inFlight: 0 },
        basis: { level: expect.stringMatching(/^(exact|coarse)$/) },
      });
      expect(staging(slow).basis.n).toBeGreaterThanOrEqual(8);
      expect(staging(fast).params).toMatchObject({ bytes: 25 * MiB, sourceSite: 'FAST_RSE' });
      // 25 GiB at 30 MB/s is about 900 s; 25 MiB at 1 GB/s about the 5 s latency.
      expect(staging(slow).medianSeconds).toBeGreaterThan(600);
      expect(staging(slow).medianSeconds).toBeLessThan(1500);
      expect(staging(fast).boundSeconds).toBeLessThan(60);
      // The starts differ by what the estimates say (offers cut in whole 1-second blocks, moments apart).
      const apart = (availableStart(slow) - availableStart(fast)) / 1000;
      const said = slow.estimates!.boundSeconds - fast.estimates!.boundSeconds;
      expect(said).toBeGreaterThan(600);
      expect(Math.abs(apart - said)).toBeLessThanOrEqual(2);

      // The IVOA document says the same.
      const rest = await fetch(`${broker.url}/sessions/${slow.id}`, {
        headers: { authorization: 'Bearer dev:alice', accept: 'application/json' },
      }).then((response) => response.json());
      expect(rest.estimates.readyBoundAt).toBe(slow.estimates!.readyBoundAt);
      expect(rest.estimates.actions).toHaveLength(3);
      expect(staging(slow).component).toBe(rest.data[0].meta.uuid);
    } finally {
      await broker.close();
    }
  });

  it('keeps the figures across a restart, though the estimator has since learned otherwise', async () => {
    // The slow site got fast: what an offer made now would say changes, the step's record does not.
    await importHistory(
      stagings({ SLOW_RSE: 1e9 }, 20).map((o) => ({ ...o, durationSeconds: o.durationSeconds + 0.5 })),
    );
    const broker = await testBroker({ PREPARATION_ESTIMATE: 'learned', SQLITE_PATH: path });
    try {
      const { executionStep } = await client(broker).request(ExecutionStepDocument, { id: slow.id });
      expect(executionStep!.estimates).toEqual(slow.estimates);
      const now = await offer(broker, 25 * GiB, 'SLOW_RSE');
      expect(staging(now).medianSeconds).toBeLessThan(staging(slow).medianSeconds / 2);
      expect(staging(now).basis.n).toBeGreaterThan(staging(slow).basis.n);
    } finally {
      await broker.close();
    }
  });
});
