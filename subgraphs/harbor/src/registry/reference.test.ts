import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatImageReference,
  ImageReferenceError,
  parseImageReference,
  registryBaseUrl,
} from './reference.ts';

const DIGEST = 'sha256:5d22a47f43b2b5efc433554092de724bd6c3cf01d2c74038f6569770a5dd5245';

describe('parseImageReference', () => {
  it.each([
    [
      'ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13',
      {
        registry: 'ghcr.io',
        repository: 'ivoa/oligia-webtop',
        tag: 'ubuntu-2022.01.13',
        reference: 'ubuntu-2022.01.13',
      },
    ],
    ['ubuntu', { registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest', reference: 'latest' }],
    ['ivoa/oligia-webtop:1.0', { registry: 'docker.io', repository: 'ivoa/oligia-webtop', tag: '1.0' }],
    ['index.docker.io/library/python:3.12', { registry: 'docker.io', repository: 'library/python' }],
    ['localhost:5000/a/b/c', { registry: 'localhost:5000', repository: 'a/b/c', tag: 'latest' }],
    [
      `images.canfar.net/skaha/notebook@${DIGEST}`,
      { registry: 'images.canfar.net', repository: 'skaha/notebook', digest: DIGEST, reference: DIGEST },
    ],
    [`ghcr.io/x/y:v1@${DIGEST}`, { tag: 'v1', digest: DIGEST, reference: DIGEST }],
    ['[::1]:5000/x:1', { registry: '[::1]:5000', repository: 'x' }],
  ])('reads %s', (input, expected) => {
    const parsed = parseImageReference(input);
    expect(parsed).toMatchObject(expected);
    if (!('tag' in expected) && parsed.digest) expect(parsed.tag).toBeUndefined();
  });

  it.each([
    ['', 'reference'],
    ['https://ghcr.io/x/y', 'reference'],
    ['ghcr.io/Ivoa/x', 'repository'],
    ['ghcr.io/x/y:-bad', 'tag'],
    ['ghcr.io/x/y@sha256:abc', 'digest'],
    ['ghcr.io/x//y', 'repository'],
  ])('rejects %s naming the %s', (input, field) => {
    const error = (() => {
      try {
        parseImageReference(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ImageReferenceError);
    expect((error as ImageReferenceError).field).toBe(field);
  });

  it('maps Docker Hub to its API host', () => {
    expect(registryBaseUrl('docker.io')).toBe('https://registry-1.docker.io');
    expect(registryBaseUrl('ghcr.io')).toBe('https://ghcr.io');
  });

  it('round-trips its normal form', () => {
    const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:[-_.][a-z0-9]{1,8})?$/);
    fc.assert(
      fc.property(
        fc.constantFrom('ghcr.io', 'docker.io', 'localhost:5000', 'images.canfar.net'),
        fc.array(component, { minLength: 1, maxLength: 3 }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
        fc.option(fc.stringMatching(/^[a-f0-9]{64}$/), { nil: undefined }),
        (registry, parts, tag, hex) => {
          const text = formatImageReference({
            registry,
            repository:
              registry === 'docker.io' && parts.length === 1 ? `library/${parts[0]}` : parts.join('/'),
            ...(tag ? { tag } : {}),
            ...(hex ? { digest: `sha256:${hex}` } : {}),
          });
          const parsed = parseImageReference(text);
          expect(formatImageReference(parsed)).toBe(tag || hex ? text : `${text}:latest`);
        },
      ),
    );
  });
});
