import { describe, expect, it } from 'vitest';
import { newId } from './ids.ts';

describe('newId', () => {
  it('makes distinct version-7 UUIDs that sort by the millisecond they were made in', async () => {
    const first = Array.from({ length: 1000 }, newId);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = Array.from({ length: 1000 }, newId);
    const all = [...first, ...second];
    expect(new Set(all).size).toBe(all.length);
    for (const id of all)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Every id of the later batch sorts after every id of the earlier one.
    expect([...first].sort().at(-1)! < [...second].sort()[0]!).toBe(true);
  });

  it('does not reuse the random bits of a pool it has refilled', () => {
    const randomParts = new Set(Array.from({ length: 2000 }, () => newId().slice(14)));
    expect(randomParts.size).toBe(2000);
  });
});
