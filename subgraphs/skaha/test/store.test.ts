/** A store from before the sessions kept their command's trace opens with its rows. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'skaha-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the Skaha worker store', () => {
  it('adds the traceparent column to a sessions table without it, keeping its rows', async () => {
    const path = join(dir, 'old.sqlite');
    const before = await openStore(path);
    await sql`ALTER TABLE sessions DROP COLUMN traceparent`.execute(before);
    await sql`INSERT INTO sessions (component_uuid, step_id, owner, callback_url, name, type, image, cores,
      memory_gib, fixed, in_flight, session_id, intent, status, skaha_sequence, phase,
      create_requested_at, updated_at)
      VALUES ('c', 's', 'alice', 'http://broker/callbacks', 'n', 'notebook', 'i', 1, 2, 1, 0, 'x', 'run',
      'Pending', 0, 'PREPARING', 0, 0)`.execute(before);
    await before.destroy();
    const after = await openStore(path);
    const rows = await after.selectFrom('sessions').select(['component_uuid', 'traceparent']).execute();
    await after.destroy();
    expect(rows).toEqual([{ component_uuid: 'c', traceparent: null }]);
  });
});
