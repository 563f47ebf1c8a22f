import { sql, type Kysely } from 'kysely';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { openSqlite } from '../store/sqlite.ts';
import { CommandInbox, migrateCommands, type CommandTables } from './inbox.ts';

const log = pino({ level: 'silent' });
const open: Kysely<CommandTables>[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) await db.destroy();
});
const openDb = () => {
  const db = openSqlite<CommandTables>(':memory:');
  open.push(db);
  return db;
};

const command = (id: string, action: Ivoa.WorkerCommand['action'] = 'prepare') =>
  ({
    commandId: id,
    action,
    stepId: 'step-1',
    component: { uuid: `component-${id}`, role: 'compute', kind: 'SimpleComputeResource' },
  }) as unknown as Ivoa.WorkerCommand;

/** Work the test ends by hand, recording what it was given. */
function work() {
  const started: string[] = [];
  const pending = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  const run = (c: Ivoa.WorkerCommand) =>
    new Promise<void>((resolve, reject) => {
      started.push(c.commandId);
      pending.set(c.commandId, { resolve, reject });
    });
  return { run, started, pending };
}

const rows = (db: Kysely<CommandTables>) =>
  db
    .selectFrom('commands')
    .select(['command_id', 'action', 'component_uuid', 'done'])
    .orderBy('command_id')
    .execute();
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('the command inbox', () => {
  it('takes a command once, runs it in the background and marks it done when its work ends', async () => {
    const db = openDb();
    await migrateCommands(db);
    const { run, started, pending } = work();
    const inbox = new CommandInbox(db, run, log);
    expect(await inbox.accept(command('a'))).toBe(true);
    expect(await inbox.accept(command('a'))).toBe(false);
    expect(started).toEqual(['a']);
    expect(await rows(db)).toEqual([
      { command_id: 'a', action: 'prepare', component_uuid: 'component-a', done: 0 },
    ]);
    pending.get('a')!.resolve();
    await settle();
    expect((await rows(db))[0]!.done).toBe(1);
  });

  it('leaves failed work undone, and a restart runs it again until it succeeds', async () => {
    const db = openDb();
    await migrateCommands(db);
    const first = work();
    await new CommandInbox(db, first.run, log).accept(command('a'));
    await new CommandInbox(db, first.run, log).accept(command('b', 'release'));
    first.pending.get('a')!.reject(new Error('backend down'));
    first.pending.get('b')!.resolve();
    await settle();
    expect((await rows(db)).map((row) => row.done)).toEqual([0, 1]);

    const restarted = work();
    const inbox = new CommandInbox(db, restarted.run, log);
    expect(await inbox.resume()).toBe(1);
    expect(restarted.started).toEqual(['a']);
    restarted.pending.get('a')!.resolve();
    await settle();
    expect(await new CommandInbox(db, restarted.run, log).resume()).toBe(0);
  });

  it("brings an earlier worker's table to the shared shape, keeping its rows", async () => {
    const db = openDb();
    // The Skaha worker's table before the inbox was shared: the component, no action.
    await sql`CREATE TABLE commands (command_id TEXT PRIMARY KEY, component_uuid TEXT NOT NULL,
      body TEXT NOT NULL, done INTEGER NOT NULL, received_at TEXT NOT NULL)`.execute(db);
    await sql`INSERT INTO commands VALUES ('old', 'component-old', ${JSON.stringify(command('old'))}, 0, '2026-01-01T00:00:00Z')`.execute(
      db,
    );
    await migrateCommands(db);
    await migrateCommands(db);
    const { run, started } = work();
    const inbox = new CommandInbox(db, run, log);
    expect(await inbox.resume()).toBe(1);
    expect(await inbox.accept(command('new', 'cancel'))).toBe(true);
    expect(started).toEqual(['old', 'new']);
    expect(await rows(db)).toEqual([
      { command_id: 'new', action: 'cancel', component_uuid: 'component-new', done: 0 },
      { command_id: 'old', action: null, component_uuid: 'component-old', done: 0 },
    ]);
  });
});
