import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED, generated } from '../codegen.ts';

describe('the portal typed documents', () => {
  it('are current with the gateway public schema and src/operations (else: npm run codegen -w portal)', async () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(await generated());
  });
});
