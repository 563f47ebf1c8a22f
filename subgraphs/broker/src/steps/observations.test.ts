import { afterEach, describe, expect, it } from 'vitest';
import { engineMigrations } from '../engine/tables.ts';
import type { Observation } from '../estimates/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from '../store/scratch.ts';
import { insertObservation, observations, type ObservationRecord } from './store.ts';
import { stepMigrations, type BrokerTables } from './tables.ts';

const pgUp = await postgresReachable();

const copy = (i: number): Observation => ({
  action: 'image-copy',
  params: { bytes: 1e6 * i, registry: 'ghcr.io', local: i % 2 === 0 },
  startedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
  durationSeconds: 1.25 + i,
  outcome: i === 3 ? 'failed' : 'ok',
});
const record = (i: number, recordedAt: number): ObservationRecord => ({
  eventId: `event-${String(i).padStart(3, '0')}`,
  stepId: 'step',
  componentUuid: `component-${i}`,
  role: 'executable',
  kind: 'docker',
  observation: copy(i),
  recordedAt,
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !pgUp)(`preparation observations on ${dialect}`, () => {
    let scratch: ScratchDatabase | undefined;
    let store: Store<BrokerTables> | undefined;
    afterEach(async () => {
      await store?.close();
      await scratch?.drop();
    });

    it('are kept once per event and read back whole, in the order they were learned, across pages', async () => {
      scratch = await scratchDatabase(dialect);
      store = await openStore<BrokerTables>({
        url: scratch.url,
        migrations: [engineMigrations, stepMigrations],
      });
      // Learned out of id order, two at the same instant.
      const written = [record(5, 100), record(2, 200), record(9, 200), record(3, 300), record(1, 400)];
      for (const r of written) await insertObservation(store.db, r);
      await insertObservation(store.db, { ...record(5, 999), observation: copy(7) });

      const read: ObservationRecord[] = [];
      for await (const r of observations(store.db, 2)) read.push(r);
      expect(read).toEqual(written);
    });
  });
}
