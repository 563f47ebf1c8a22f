import { Readable, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { engineMigrations } from '../engine/tables.ts';
import {
  createEstimator,
  formatObservation,
  generateTrace,
  type DataStagingParams,
  type Observation,
} from '../estimates/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from '../store/scratch.ts';
import { insertObservation, observations } from './store.ts';
import { stepMigrations, type BrokerTables } from './tables.ts';
import { exportObservations, IMPORTED, importObservations } from './traces.ts';

const pgUp = await postgresReachable();

/** A synthetic history with failures, drift and every action (the same for the same seed). */
const history = generateTrace({ seed: 4242, count: 1200, drift: 0.5 });

async function exported(store: Store<BrokerTables>): Promise<string> {
  let text = '';
  const out = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  expect(await exportObservations(store.db, out)).toBe(text.split('\n').length - 1);
  return text;
}
const lines = (text: string) => text.trimEnd().split('\n');
const from = (text: string) => Readable.from([text]);
const count = async (store: Store<BrokerTables>) =>
  Number(
    (
      await store.db
        .selectFrom('preparation_observations')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !pgUp)(`trace export and import on ${dialect}`, () => {
    const scratches: ScratchDatabase[] = [];
    const stores: Store<BrokerTables>[] = [];
    const open = async () => {
      const scratch = await scratchDatabase(dialect);
      scratches.push(scratch);
      const store = await openStore<BrokerTables>({
        url: scratch.url,
        migrations: [engineMigrations, stepMigrations],
      });
      stores.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close();
      for (const scratch of scratches.splice(0)) await scratch.drop();
    });

    it('round-trips what callbacks recorded, and importing twice adds nothing', async () => {
      const source = await open();
      // As the broker records them: learned when each finished, from callbacks with their own ids.
      for (const [i, observation] of history.entries())
        await insertObservation(source.db, {
          eventId: `callback-${i}`,
          stepId: 'step',
          componentUuid: `component-${i}`,
          role: 'data',
          kind: 'kind',
          observation,
          recordedAt: Date.parse(observation.startedAt) + observation.durationSeconds * 1000,
        });
      const first = await exported(source);
      expect(lines(first)).toHaveLength(history.length);
      expect(lines(first).sort()).toEqual(history.map(formatObservation).sort());

      const target = await open();
      expect(await importObservations(target.db, from(first))).toEqual({
        read: history.length,
        added: history.length,
      });
      expect(await importObservations(target.db, from(first))).toEqual({ read: history.length, added: 0 });
      expect(await count(target)).toBe(history.length);
      const second = await exported(target);
      expect(lines(second).sort()).toEqual(lines(first).sort());
      // Replayed in the order they finished, as the source learned them: the same estimates.
      const estimators = [createEstimator(), createEstimator()];
      for (const [store, estimator] of [
        [source, estimators[0]!],
        [target, estimators[1]!],
      ] as const)
        for await (const record of observations(store.db)) estimator.observe(record.observation);
      const staging = history.find((o) => o.action === 'data-staging')!;
      const params = { ...(staging.params as DataStagingParams), bytes: 2e9 };
      expect(estimators[1]!.estimate('data-staging', params)).toEqual(
        estimators[0]!.estimate('data-staging', params),
      );

      // An export imported back into its own store finds every observation there already.
      expect(await importObservations(source.db, from(first))).toEqual({ read: history.length, added: 0 });
      expect(await count(source)).toBe(history.length);
      const imported = await target.db
        .selectFrom('preparation_observations')
        .select(['step_id', 'role', 'action'])
        .execute();
      expect(imported.every((row) => row.step_id === IMPORTED)).toBe(true);
    });

    it('refuses a trace with a bad line, naming line, field and rule, and adds none of it', async () => {
      const store = await open();
      const good = history.slice(0, 3).map(formatObservation);
      const bad = formatObservation(history[3]!).replace(/"bytes":[^,}]+/, '"bytes":"many"');
      await expect(importObservations(store.db, from([...good, '', bad].join('\n')))).rejects.toThrow(
        /^line 5: params\.bytes must be a non-negative number for (data-staging|image-copy)$/,
      );
      expect(await count(store)).toBe(0);
      const observation: Observation = { ...history[0]!, startedAt: 'yesterday' } as Observation;
      await expect(importObservations(store.db, from(JSON.stringify(observation)))).rejects.toThrow(
        'line 1: startedAt must be an ISO-8601 date-time with a zone',
      );
    });
  });
}
