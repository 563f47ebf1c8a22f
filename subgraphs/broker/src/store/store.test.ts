import { sql, type Kysely, type Transaction } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { engineMigrations } from '../engine/tables.ts';
import { openStore, type Migrations, type Store } from './index.ts';
import { postgresReachable, scratchDatabase, type ScratchDatabase } from './scratch.ts';

interface Samples {
  samples: { id: string; at: number; flag: boolean | null; doc: string };
}

const sampleMigrations: Migrations = {
  '500-samples': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('samples')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('flag', 'boolean')
        .addColumn('doc', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

const pgUp = await postgresReachable();

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !pgUp)(`store on ${dialect}`, () => {
    let scratch: ScratchDatabase | undefined;
    const open: Store<unknown>[] = [];
    const openOn = async <DB>(migrations: Migrations[]) => {
      scratch ??= await scratchDatabase(dialect);
      const store = await openStore<DB>({ url: scratch.url, migrations });
      open.push(store as Store<unknown>);
      return store;
    };
    afterEach(async () => {
      for (const store of open.splice(0)) await store.close();
      await scratch?.drop();
      scratch = undefined;
    });

    it('reports its dialect and answers pings', async () => {
      const store = await openOn([engineMigrations]);
      expect(store.dialect).toBe(dialect);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('applies migrations once, in name order, and a later set only adds what is new', async () => {
      const first = await openOn([sampleMigrations, engineMigrations]);
      expect(first.migrated).toEqual(['000-engine-jobs', '111-jobs-traceparent', '500-samples']);
      await first.close();
      open.length = 0;
      const again = await openOn([engineMigrations, sampleMigrations]);
      expect(again.migrated).toEqual([]);
      await again.close();
      open.length = 0;
      const later = {
        '600-more': {
          up: (db: Kysely<unknown>) => db.schema.createTable('more').addColumn('x', 'text').execute(),
        },
      };
      const grown = await openOn([engineMigrations, sampleMigrations, later]);
      expect(grown.migrated).toEqual(['600-more']);
    });

    it('refuses two migrations with one name', async () => {
      await expect(
        openOn([engineMigrations, { '000-engine-jobs': sampleMigrations['500-samples']! }]),
      ).rejects.toThrow(/two migrations are named 000-engine-jobs/);
    });

    it('returns times as numbers, booleans as booleans and JSON text unchanged', async () => {
      const store = await openOn<Samples>([sampleMigrations]);
      const at = Date.UTC(2030, 0, 1, 12, 0, 0, 123);
      const doc = JSON.stringify({ nested: { list: [1, 'two', null] }, unicode: 'é✓' });
      await store.db
        .insertInto('samples')
        .values([
          { id: 'a', at, flag: true, doc },
          { id: 'b', at: at + 1, flag: false, doc: '[]' },
          { id: 'c', at: at + 2, flag: null, doc: '"x"' },
        ])
        .execute();
      const rows = await store.db.selectFrom('samples').selectAll().orderBy('id').execute();
      expect(rows).toEqual([
        { id: 'a', at, flag: true, doc },
        { id: 'b', at: at + 1, flag: false, doc: '[]' },
        { id: 'c', at: at + 2, flag: null, doc: '"x"' },
      ]);
      expect(JSON.parse(rows[0]!.doc)).toEqual({ nested: { list: [1, 'two', null] }, unicode: 'é✓' });
      const filtered = await store.db.selectFrom('samples').select('id').where('flag', '=', true).execute();
      expect(filtered).toEqual([{ id: 'a' }]);
      const { count } = await store.db
        .selectFrom('samples')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow();
      expect(count).toBe(3);
    });

    it('rolls a transaction back when its function throws', async () => {
      const store = await openOn<Samples>([sampleMigrations]);
      await expect(
        store.transaction(async (tx) => {
          await tx.insertInto('samples').values({ id: 'gone', at: 1, flag: null, doc: '{}' }).execute();
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect(await store.db.selectFrom('samples').selectAll().execute()).toEqual([]);
    });

    it('keeps transactions asked for together apart: one that throws is rolled back alone', async () => {
      const store = await openOn<Samples>([sampleMigrations]);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction(async (tx) => {
            const seen = await tx.selectFrom('samples').select('id').execute();
            await tx
              .insertInto('samples')
              .values({ id: `s${i}`, at: i, flag: null, doc: '{}' })
              .execute();
            if (i === 7) throw new Error('member 7 fails');
            return seen.length;
          }),
        ),
      );
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o.reason as Error).message)).toEqual(
        ['member 7 fails'],
      );
      if (dialect === 'sqlite') {
        // One writer: each saw the ones asked for before it, except the one that failed.
        expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : null))).toEqual(
          Array.from({ length: 20 }, (_, i) => (i === 7 ? null : i < 7 ? i : i - 1)),
        );
      }
      const ids = (await store.db.selectFrom('samples').select('id').execute()).map((r) => r.id);
      expect(ids.sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `s${i}`)
          .filter((id) => id !== 's7')
          .sort(),
      );
    });

    if (dialect === 'sqlite') {
      it('runs SQLite in WAL mode with NORMAL sync, a busy timeout and foreign keys', async () => {
        const store = await openOn([]);
        const pragma = async (name: string) =>
          Object.values((await sql.raw(`pragma ${name}`).execute(store.db)).rows[0] as object)[0];
        expect(await pragma('journal_mode')).toBe('wal');
        expect(await pragma('synchronous')).toBe(1);
        expect(await pragma('busy_timeout')).toBe(5000);
        expect(await pragma('foreign_keys')).toBe(1);
      });

      it('settles every transaction of a group whose shared transaction fails', async () => {
        const store = await openOn<Samples>([sampleMigrations]);
        const insert = (id: string) => (tx: Transaction<Samples>) =>
          tx.insertInto('samples').values({ id, at: 1, flag: null, doc: '{}' }).execute();
        const outcomes = await Promise.allSettled([
          store.transaction(insert('a')),
          // Ends the shared transaction under the others' feet: its savepoint and the commit fail.
          store.transaction((tx) => sql`commit`.execute(tx)),
          store.transaction(insert('c')),
        ]);
        expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
        // And the store goes on.
        await store.transaction(insert('d'));
        expect(await store.db.selectFrom('samples').select('id').where('id', '=', 'd').execute()).toEqual([
          { id: 'd' },
        ]);
      });

      it('commits transactions asked for together in one commit', async () => {
        const store = await openOn<Samples>([sampleMigrations]);
        const walFrames = async (mode: 'passive' | 'truncate') =>
          ((await sql.raw(`pragma wal_checkpoint(${mode})`).execute(store.db)).rows[0] as { log: number })
            .log;
        await walFrames('truncate');
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.transaction((tx) =>
              tx
                .insertInto('samples')
                .values({ id: `s${i}`, at: i, flag: null, doc: '{}' })
                .execute(),
            ),
          ),
        );
        // A commit each would write at least 20 frames (the table's page each time).
        expect(await walFrames('passive')).toBeLessThan(5);
      });
    }
  });
}

it('opens an in-memory SQLite database by default', async () => {
  const store = await openStore({ migrations: [engineMigrations] });
  expect(store.dialect).toBe('sqlite');
  expect(
    await store.db
      .selectFrom('jobs' as never)
      .selectAll()
      .execute(),
  ).toEqual([]);
  await store.close();
});
