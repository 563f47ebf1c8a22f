import DataLoader from 'dataloader';

/**
 * Batches the reads by id asked for in one tick into one query. A GraphQL request keeps one per
 * request with its cache; a loader that lives longer passes `{ cache: false }` so that every read
 * sees the latest commit.
 */
export function loaderById<T extends { id: string }>(
  load: (ids: readonly string[]) => Promise<T[]>,
  options?: DataLoader.Options<string, T | undefined>,
): DataLoader<string, T | undefined> {
  return new DataLoader<string, T | undefined>(async (ids) => {
    const found = new Map((await load(ids)).map((row) => [row.id, row]));
    return ids.map((id) => found.get(id));
  }, options);
}
