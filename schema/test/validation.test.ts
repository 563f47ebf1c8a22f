import { describe, expect, it } from 'vitest';
import {
  KINDS,
  canonicalKind,
  upgradeExecutionRequest,
  upgradeUpdate,
  validateExecutionRequest,
  validateOfferSet,
  validateExecutionStep,
  validateUpdate,
} from '../src/index.ts';
import { example, examples } from './examples.ts';

const isRequest = (name: string) => name.includes('offerset-request');
const isUpdate = (name: string) => /reject|accept/.test(name) && name.includes('request');
// 006-002 is the reference's HTTP 400 error body, not an offer set.
const isResponse = (name: string) =>
  /offerset-(response|final)/.test(name) && !name.startsWith('example-') && !name.startsWith('006-');

describe('the reference examples', () => {
  it.each([
    '001-001-offerset-request.yaml',
    '002-001-offerset-request.yaml',
    '003-001-offerset-request.json',
    '004-001-offerset-request.json',
  ])('%s (1.0.5 style) validates after kind-alias mapping alone', (name) => {
    const result = validateExecutionRequest(example(name));
    expect(result).toMatchObject({ ok: true });
    if (result.ok) expect(JSON.stringify(result.value)).not.toContain('/EB/schema/');
  });

  it.each(examples(isUpdate))('update %s validates', (name) => {
    const { document } = upgradeUpdate(example(name));
    expect(validateUpdate(document)).toMatchObject({ ok: true });
  });

  it.each(examples((name) => isRequest(name) && !name.startsWith('006-')))(
    '%s is upgraded to 1.0.7 and validates',
    (name) => {
      const upgraded = upgradeExecutionRequest(example(name));
      expect(upgraded.issues).toEqual([]);
      const result = validateExecutionRequest(upgraded.document);
      expect(result.ok ? [] : result.issues).toEqual([]);
    },
  );

  it('upgrades the old shapes as documented', () => {
    const old = upgradeExecutionRequest(example('example-006-001-offerset-request.yaml'));
    expect(old.document).not.toHaveProperty('computer');
    expect(old.document).toMatchObject({
      executable: { kind: KINDS.DockerContainer, meta: { name: 'example-006-executable' } },
      compute: { kind: KINDS.SimpleComputeResource, meta: { name: 'example-006-compute' } },
    });
    const volumes = upgradeExecutionRequest(example('005-001-offerset-request.yaml')).document;
    expect(volumes).not.toHaveProperty('volumes');
    expect(volumes.compute).toMatchObject({
      volumes: [
        { kind: KINDS.SimpleVolumeMount, resource: 'data-005-01', path: '/calibration', mode: 'READWRITE' },
      ],
    });
    const storage = upgradeExecutionRequest(example('007-001-offerset-request.yaml')).document as {
      data: { storage?: string }[];
      storage: object[];
    };
    expect(storage.data.map((d) => d.storage)).toEqual([
      'default-storage-007-01',
      'default-storage-007-01',
      'storage-for-data-007-03',
    ]);
    expect(storage.storage[0]).not.toHaveProperty('data');
  });

  it('refuses 006-001 (kinds with //types), naming the path', () => {
    const upgraded = upgradeExecutionRequest(example('006-001-offerset-request.yaml'));
    expect(upgraded.issues[0]).toMatchObject({
      path: '/volumes/0/kind',
      rule: 'kind',
      message: expect.stringContaining('v1.0//types/volume'),
    });
  });

  it.each(examples(isResponse))('response %s validates as an offer set after alias mapping', (name) => {
    const result = validateOfferSet(example(name));
    expect(result.ok ? [] : result.issues).toEqual([]);
  });

  it('session responses validate as steps', () => {
    for (const name of examples(
      (n) => /session-\d\d-response/.test(n) || /(accept|reject)-\d\d-response/.test(n),
    )) {
      const result = validateExecutionStep(example(name));
      expect(result.ok ? [] : result.issues, name).toEqual([]);
    }
  });
});

describe('validation errors name the path and the rule', () => {
  const notebook = { kind: KINDS.JupyterNotebook, location: 'https://example.org/a.ipynb' };

  it('an unknown kind', () => {
    const result = validateExecutionRequest({ executable: { kind: 'https://example.org/no-such-kind' } });
    expect(result).toEqual({
      ok: false,
      issues: [
        {
          path: '/executable/kind',
          rule: 'kind',
          message: 'unknown kind "https://example.org/no-such-kind"',
        },
      ],
    });
  });

  it('a missing kind', () => {
    const result = validateExecutionRequest({ executable: { location: 'x' } });
    expect(result).toMatchObject({ ok: false, issues: [{ path: '/executable/kind', rule: 'required' }] });
  });

  it('bad ISO-8601 values', () => {
    const result = validateExecutionRequest({
      executable: notebook,
      schedule: { requested: { duration: '1 hour', start: '2026-13-01T00:00:00Z/tomorrow' } },
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.issues).toEqual(
        expect.arrayContaining([
          {
            path: '/schedule/requested/duration',
            rule: 'pattern',
            message: 'must be an ISO-8601 duration such as PT1H',
          },
          expect.objectContaining({ path: '/schedule/requested/start', rule: 'pattern' }),
        ]),
      );
    }
  });

  it('wrong types and ranges deep inside a kind', () => {
    const result = validateExecutionRequest({
      executable: notebook,
      compute: { kind: KINDS.SimpleComputeResource, cores: { min: -2, max: 'many' } },
      data: [{ kind: KINDS.SkaoDataResource, skao: { datasize: 1.5, objecttype: 'BLOB' } }],
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.issues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ path: '/compute/cores/min', rule: 'minimum' }),
          expect.objectContaining({ path: '/compute/cores/max', rule: 'type' }),
          expect.objectContaining({ path: '/data/0/skao/datasize', rule: 'type' }),
          {
            path: '/data/0/skao/objecttype',
            rule: 'enum',
            message: 'must be one of FILE, CONTAINER, DATASET',
          },
        ]),
      );
    }
  });

  it('a component that is not an object', () => {
    // Found by e2e/hostile: a data list of strings and nulls reached the broker's checks.
    const result = validateExecutionRequest({
      executable: null,
      compute: 'big',
      data: ['6G', null, false],
      storage: [[]],
    });
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) {
      expect(result.issues.map(({ path, rule }) => `${path} ${rule}`).sort()).toEqual([
        '/compute type',
        '/data/0 type',
        '/data/1 type',
        '/data/2 type',
        '/executable type',
        '/storage/0 type',
      ]);
    }
  });

  it('a document that is not an object', () => {
    expect(validateExecutionRequest([1, 2])).toMatchObject({
      ok: false,
      issues: [{ path: '/', rule: 'type' }],
    });
  });

  it('accepts the JavaScript-safe ISO-8601 forms the upstream patterns accept', () => {
    for (const start of [
      '2023-08-09T12:00:00Z/2023-08-09T13:00:00Z',
      '2023-08-09/PT2H',
      'PT2H/2023-08-09',
      '2023-08-09/2023-08-10',
    ]) {
      expect(
        validateExecutionRequest({
          executable: notebook,
          schedule: { requested: { duration: 'P1DT2H30M', start } },
        }),
      ).toMatchObject({
        ok: true,
      });
    }
  });
});

describe('kind aliases', () => {
  it('maps 1.0.5, October-2025 and April-2025 URIs to 1.0.7', () => {
    expect(
      canonicalKind('https://www.purl.org/ivoa.net/EB/schema/v1.0/types/data/skao-data-resource-1.0'),
    ).toBe(KINDS.SkaoDataResource);
    expect(
      canonicalKind('https://www.purl.org/ivoa.net/EB/schema/types/executable/docker-container-1.0'),
    ).toBe(KINDS.DockerContainer);
    expect(
      canonicalKind('https://www.purl.org/ivoa.net/EB/schema/types/computer/simple-compute-resource-1.0'),
    ).toBe(KINDS.SimpleComputeResource);
    expect(canonicalKind(KINDS.JupyterNotebook!)).toBe(KINDS.JupyterNotebook);
    expect(
      canonicalKind('https://www.purl.org/ivoa.net/EB/schema/v1.0//types/volume/simple-volume-mount-1.0'),
    ).toBeUndefined();
  });
});
