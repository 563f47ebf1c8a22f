import { CompiledQuery, type Kysely, type Transaction } from 'kysely';

interface Waiting<DB> {
  fn: (tx: Transaction<DB>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Transactions for SQLite's single writer, committed in groups. Most of a small transaction's cost
 * is its commit (writing its pages to the WAL), and SQLite runs one transaction at a time anyway:
 * the transactions asked for in one turn of the event loop run one after another inside one
 * transaction, each in a savepoint of its own. One that throws is rolled back alone and rejects
 * alone; the others resolve once the shared commit has succeeded, and all reject if it fails.
 * Callers therefore see what they would with a transaction each, in the order they asked.
 */
export function groupCommits<DB>(
  db: Kysely<DB>,
  maxGroup = 32,
): <T>(fn: (tx: Transaction<DB>) => Promise<T>) => Promise<T> {
  const waiting: Waiting<DB>[] = [];
  let scheduled = false;

  const runGroup = async () => {
    const group = waiting.splice(0, maxGroup);
    const done: { item: Waiting<DB>; value: unknown }[] = [];
    try {
      await db.transaction().execute(async (tx) => {
        for (const item of group) {
          await tx.executeQuery(CompiledQuery.raw('savepoint member'));
          try {
            done.push({ item, value: await item.fn(tx) });
            await tx.executeQuery(CompiledQuery.raw('release member'));
          } catch (error) {
            await tx.executeQuery(CompiledQuery.raw('rollback to member'));
            await tx.executeQuery(CompiledQuery.raw('release member'));
            item.reject(error);
          }
        }
      });
    } catch (error) {
      // The shared transaction failed (its begin, a savepoint or the commit): no member is
      // committed. Those that already failed on their own keep their own error.
      for (const item of group) item.reject(error);
      return;
    }
    for (const { item, value } of done) item.resolve(value);
  };

  const schedule = () => {
    scheduled = true;
    // The next turn, so that the transactions asked for during this one join the group.
    setImmediate(() => {
      void runGroup().finally(() => {
        if (waiting.length) schedule();
        else scheduled = false;
      });
    });
  };

  return <T>(fn: (tx: Transaction<DB>) => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      if (!scheduled) schedule();
    });
}
