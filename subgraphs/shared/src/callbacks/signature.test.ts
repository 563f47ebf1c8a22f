import { describe, expect, it } from 'vitest';
import { signedHeaders, verify, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.ts';

describe('callback signatures', () => {
  const body = JSON.stringify({ step: 'a', phase: 'AVAILABLE' });
  const now = Date.parse('2026-11-28T12:00:00Z');

  it('accepts what it signed', () => {
    const headers = signedHeaders('s3cret', body, 'evt-1', now);
    expect(verify('s3cret', headers, body, { now })).toEqual({ ok: true, eventId: 'evt-1' });
  });

  it('rejects a changed body, a wrong secret and a stale timestamp, naming the header', () => {
    const headers = signedHeaders('s3cret', body, 'evt-1', now);
    expect(verify('s3cret', headers, body + ' ', { now })).toMatchObject({
      ok: false,
      reason: expect.stringContaining(SIGNATURE_HEADER),
    });
    expect(verify('other', headers, body, { now })).toMatchObject({ ok: false });
    expect(verify('s3cret', headers, body, { now: now + 301_000 })).toMatchObject({
      ok: false,
      reason: expect.stringContaining(TIMESTAMP_HEADER),
    });
  });
});
