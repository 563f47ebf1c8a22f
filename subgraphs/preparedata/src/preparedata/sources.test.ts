import { describe, expect, it } from 'vitest';
import { stageSourceOf } from './sources.ts';

describe('stage sources of data resource kinds', () => {
  it('takes a DID and its size from an SKAO resource (example-009)', () => {
    expect(
      stageSourceOf({
        name: 'example-009-data-01',
        skao: { namespace: 'testing', objectname: 'zrq-test-20250509-082506', datasize: 29 },
        ivoa: { datalink: { access_url: 'https://storm.srcnet.skao.int:443/sa/x' } },
      }),
    ).toEqual({
      kind: 'did',
      did: { namespace: 'testing', name: 'zrq-test-20250509-082506' },
      bytesHint: 29,
    });
  });

  it('takes the scope and object of a Rucio resource', () => {
    expect(stageSourceOf({ rucio: { scope: 'testing', object: 'f1' } })).toEqual({
      kind: 'did',
      did: { namespace: 'testing', name: 'f1' },
    });
  });

  it('prefers the DataLink #this link of an IVOA resource, and skips DataLink documents', () => {
    expect(
      stageSourceOf({
        ivoa: {
          obscore: {
            access_url: 'https://dl.example.org/links?id=1',
            access_format: 'application/x-votable+xml;content=datalink',
          },
          datalink: { access_url: 'https://data.example.org/f.fits', content_length: 123 },
        },
      }),
    ).toEqual({ kind: 'url', url: 'https://data.example.org/f.fits', bytesHint: 123 });
    expect(() =>
      stageSourceOf({
        name: 'd1',
        ivoa: {
          obscore: {
            access_url: 'https://dl.example.org/links?id=1',
            access_format: 'application/x-votable+xml;content=datalink',
          },
        },
      }),
    ).toThrow(
      'data resource d1.ivoa needs datalink.access_url, or an obscore.access_url that is not a DataLink document',
    );
  });

  it('builds a URL from S3 endpoint, bucket and object, and takes a simple location', () => {
    expect(stageSourceOf({ endpoint: 'https://s3.example.org/', bucket: 'b', object: 'o/k.fits' })).toEqual({
      kind: 'url',
      url: 'https://s3.example.org/b/o/k.fits',
    });
    expect(stageSourceOf({ location: 'https://example.org/a.fits' })).toEqual({
      kind: 'url',
      url: 'https://example.org/a.fits',
    });
    expect(() => stageSourceOf({ name: 'd2' })).toThrow(/d2 has none of skao, rucio, ivoa/);
    expect(() => stageSourceOf({ skao: { namespace: 'bad space', objectname: 'x' } })).toThrow(
      /data resource.skao.namespace must be 1-25 letters/,
    );
  });
});
