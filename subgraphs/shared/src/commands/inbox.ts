import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Ivoa } from '@srcnet/execution-step-schema';

/** A command a worker took; kept until its work is done, so that a restart resumes it. */
export interface CommandsTable {
  command_id: string;
  action: string | null;
  component_uuid: string | null;
  /** The command JSON as it came. */
  body: string;
  done: number;
  received_at: string;
}

export interface CommandTables {
  commands: CommandsTable;
}

/**
 * Creates the table, or brings one written by an earlier version of a worker to this shape: each
 * worker used to keep its own set of columns (Skaha the component, Harbor the action), now all keep
 * both.
 */
export async function migrateCommands<DB extends CommandTables>(database: Kysely<DB>): Promise<void> {
  const db = database as unknown as Kysely<CommandTables>;
  await sql`CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY, action TEXT, component_uuid TEXT, body TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, received_at TEXT NOT NULL)`.execute(db);
  const columns = await sql<{ name: string }>`PRAGMA table_info(commands)`.execute(db);
  const has = (name: string) => columns.rows.some((column) => column.name === name);
  if (!has('action')) await sql`ALTER TABLE commands ADD COLUMN action TEXT`.execute(db);
  if (!has('component_uuid')) await sql`ALTER TABLE commands ADD COLUMN component_uuid TEXT`.execute(db);
}

/**
 * The broker delivers each command at least once; a worker does each at most once. The inbox takes
 * a command once (by commandId), runs its work in the background, and marks it done when the work
 * ends. Work that fails is logged and stays undone, so that `resume` after a restart runs it again;
 * work that reports its own failure (by a FAILED callback) ends normally.
 */
export class CommandInbox<DB extends CommandTables = CommandTables> {
  private readonly db: Kysely<CommandTables>;

  constructor(
    db: Kysely<DB>,
    private readonly work: (command: Ivoa.WorkerCommand) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.db = db as unknown as Kysely<CommandTables>;
  }

  /** Takes a command; false when it was taken before. `body` is the JSON it came as. */
  async accept(command: Ivoa.WorkerCommand, body = JSON.stringify(command)): Promise<boolean> {
    const inserted = await this.db
      .insertInto('commands')
      .values({
        command_id: command.commandId,
        action: command.action,
        component_uuid: command.component.uuid,
        body,
        done: 0,
        received_at: new Date().toISOString(),
      })
      .onConflict((oc) => oc.column('command_id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
    this.log.info(
      { command: command.commandId, action: command.action, step: command.stepId },
      'command accepted',
    );
    this.start(command);
    return true;
  }

  /** Runs again the commands a restart interrupted; returns how many. */
  async resume(): Promise<number> {
    const open = await this.db.selectFrom('commands').select('body').where('done', '=', 0).execute();
    for (const row of open) this.start(JSON.parse(row.body) as Ivoa.WorkerCommand);
    return open.length;
  }

  private start(command: Ivoa.WorkerCommand): void {
    this.work(command)
      .then(() =>
        this.db
          .updateTable('commands')
          .set({ done: 1 })
          .where('command_id', '=', command.commandId)
          .execute(),
      )
      .catch((error: unknown) =>
        this.log.error({ err: error, command: command.commandId }, 'command failed'),
      );
  }
}
