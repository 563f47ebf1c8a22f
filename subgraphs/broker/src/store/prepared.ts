import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

class Placeholder {
  constructor(readonly name: string) {}
}

interface Compiled {
  query: CompiledQuery;
  /** Per parameter of the compiled query: the name of the value to bind, or a fixed value. */
  slots: (Placeholder | { value: unknown })[];
}

/**
 * A statement Kysely builds and compiles once; each run binds that run's values in the compiled
 * order. Building and compiling a small insert costs Kysely about 8 µs, more than SQLite takes to
 * run it, and the broker runs its few hot statements about 30 times per step (issue 3's profile).
 *
 * `build` is given stand-ins for the run's values: pass them to Kysely only where a value goes
 * (`values`, `set`, the right side of `where`), never compute with them. Statements whose shape
 * depends on the values (`in` lists, a varying number of rows) are not for this.
 *
 * The compiled text differs by dialect, so it is kept per dialect adapter (one per database).
 */
export function prepared<DB, V extends Record<string, unknown>, R = unknown>(
  build: (db: Kysely<DB>, values: V) => Compilable<R>,
): (db: Kysely<DB>, values: V) => Promise<QueryResult<R>> {
  const byAdapter = new WeakMap<object, Compiled>();
  const stand = new Proxy({} as V, {
    get: (_target, name) => (typeof name === 'string' ? new Placeholder(name) : undefined),
  });
  return (db, values) => {
    // getExecutor is marked internal, but it is the one handle that tells dialects apart and
    // stays the same across transactions.
    const adapter = db.getExecutor().adapter;
    let compiled = byAdapter.get(adapter);
    if (!compiled) {
      const query = build(db, stand).compile();
      compiled = {
        query,
        slots: query.parameters.map((value) => (value instanceof Placeholder ? value : { value })),
      };
      byAdapter.set(adapter, compiled);
    }
    const parameters: unknown[] = [];
    for (const slot of compiled.slots) {
      if (!(slot instanceof Placeholder)) parameters.push(slot.value);
      else if (values[slot.name] !== undefined) parameters.push(values[slot.name]);
      else return Promise.reject(new Error(`prepared statement: no value for "${slot.name}"`));
    }
    return db.executeQuery<R>({ ...compiled.query, parameters } as CompiledQuery<R>);
  };
}
