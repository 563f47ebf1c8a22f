import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Migrations, type Store } from './index.ts';
import { prepared } from './prepared.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from './scratch.ts';

interface Counters {
  counters: { id: string; n: number; flag: boolean; note: string };
}

const migrations: Migrations = {
  '500-counters': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('counters')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('n', 'integer', (c) => c.notNull())
        .addColumn('flag', 'boolean', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

const pgUp = await postgresReachable();

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !pgUp)(`prepared statements on ${dialect}`, () => {
    let scratch: ScratchDatabase | undefined;
    let store: Store<Counters> | undefined;
    afterEach(async () => {
      await store?.close();
      await scratch?.drop();
      store = undefined;
      scratch = undefined;
    });
    const open = async () => {
      scratch = await scratchDatabase(dialect);
      store = await openStore<Counters>({ url: scratch.url, migrations: [migrations] });
      return store;
    };

    it('builds once, binds each run its own values (one used twice), and keeps fixed values', async () => {
      const { db, transaction } = await open();
      let builds = 0;
      // Raises n to the given value, never lowers it; the count says whether the row changed.
      const raise = prepared((d: Kysely<Counters>, v: { id: string; n: number; note: string }) => {
        builds++;
        return d
          .insertInto('counters')
          .values({ id: v.id, n: v.n, flag: true, note: v.note })
          .onConflict((c) =>
            c.column('id').doUpdateSet({ n: v.n, note: v.note }).where('counters.n', '<', v.n),
          );
      });
      const note = `it's "quoted"; drop table counters; --`;
      expect(Number((await raise(db, { id: 'a', n: 2, note })).numAffectedRows)).toBe(1);
      expect(Number((await raise(db, { id: 'a', n: 1, note: 'lower' })).numAffectedRows)).toBe(0);
      const inTransaction = await transaction((tx) => raise(tx, { id: 'a', n: 5, note: 'higher' }));
      expect(Number(inTransaction.numAffectedRows)).toBe(1);
      await transaction((tx) => raise(tx, { id: 'b', n: 7, note }));
      await db.transaction().execute((tx) => raise(tx, { id: 'c', n: 9, note: 'c' }));
      expect(builds).toBe(1);

      const rows = await db.selectFrom('counters').selectAll().orderBy('id').execute();
      expect(rows).toEqual([
        { id: 'a', n: 5, flag: true, note: 'higher' },
        { id: 'b', n: 7, flag: true, note },
        { id: 'c', n: 9, flag: true, note: 'c' },
      ]);
    });

    it('returns the rows of a select, typed by its builder', async () => {
      const { db } = await open();
      await db.insertInto('counters').values({ id: 'x', n: 3, flag: false, note: '' }).execute();
      const byId = prepared((d: Kysely<Counters>, v: { id: string }) =>
        d.selectFrom('counters').select(['id', 'n']).where('id', '=', v.id),
      );
      expect((await byId(db, { id: 'x' })).rows).toEqual([{ id: 'x', n: 3 }]);
      expect((await byId(db, { id: 'missing' })).rows).toEqual([]);
    });

    it('names a value the caller left out instead of binding nothing', async () => {
      const { db } = await open();
      const setNote = prepared((d: Kysely<Counters>, v: { id: string; note: string }) =>
        d.updateTable('counters').set({ note: v.note }).where('id', '=', v.id),
      );
      await expect(setNote(db, { id: 'x' } as { id: string; note: string })).rejects.toThrow(
        'prepared statement: no value for "note"',
      );
    });
  });
}
