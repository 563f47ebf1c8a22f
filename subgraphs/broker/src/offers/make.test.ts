import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  KINDS,
  upgradeExecutionRequest,
  validateExecutionRequest,
  type Ivoa,
} from '@srcnet/execution-step-schema';
import { checkRequest } from './checks.ts';
import { makeOffers, type OfferRules } from './make.ts';
import { formatDuration, parseDuration, parseIntervalStart } from './time.ts';

const HOUR = 3_600_000;
const rules: OfferRules = {
  capacity: { cores: 32, memoryGiB: 32, storageGiB: 1000 },
  limits: {
    maxCores: 16,
    maxMemoryGiB: 16,
    maxStorageGiB: 1000,
    supportedKinds: Object.keys(KINDS),
    trustedRegistries: [],
  },
  blockMs: 60_000,
  lookAheadMs: 24 * HOUR,
  maxOffers: 4,
  maxChunkMs: 4 * HOUR,
  offerTtlMs: 300_000,
  defaultDurationMs: 2 * HOUR,
  releaseMs: 10_000,
};
const constantEstimate = { boundSeconds: 45, medianSeconds: 30, components: [] };
const now = Date.parse('2026-11-28T12:00:10Z');

function request(name: string): Ivoa.ExecutionRequest {
  const raw = parse(
    readFileSync(
      resolve(import.meta.dirname, '../../../../../shared/reference/calycopis-examples', name),
      'utf8',
    ),
  );
  const checked = validateExecutionRequest(upgradeExecutionRequest(raw).document);
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return checked.value as Ivoa.ExecutionRequest;
}

const make = (req: Ivoa.ExecutionRequest, extra: Partial<Parameters<typeof makeOffers>[0]> = {}) =>
  makeOffers({
    request: req,
    checked: checkRequest(req, rules.limits, new Date(now)),
    owner: 'alice',
    now,
    bookings: [],
    rules,
    estimate: constantEstimate,
    ...extra,
  });

describe('offers', () => {
  it('answers 001-001 as the reference did in November 2025: four back-to-back 2-hour offers of 10 cores', () => {
    const made = make(request('001-001-offerset-request.yaml'));
    expect(made.offerSet.result).toBe('YES');
    expect(made.offers).toHaveLength(4);
    const starts = made.offers.map((offer) => offer.start);
    expect(starts[0]).toBe(Date.parse('2026-11-28T12:01:00Z')); // now + 45 s, up to the next whole minute
    for (let i = 1; i < 4; i++) expect(starts[i]! - starts[i - 1]!).toBe(2 * HOUR);
    for (const offer of made.offers) {
      expect(offer.document.phase).toBe('OFFERED');
      expect(offer.document.compute).toMatchObject({
        cores: { min: 10, max: 10 },
        memory: { min: 6, max: 6 },
      });
      expect(offer.document.schedule?.available).toEqual({
        start: expect.stringMatching(/Z\/PT0S$/),
        duration: 'PT2H',
      });
      expect(offer.document.schedule?.preparing?.duration).toBe('PT45S');
      expect(offer.document.expires).toBe('2026-11-28T12:05:10Z');
    }
    const uuids = made.offers.flatMap((o) => [
      o.document.meta!.uuid,
      o.document.executable!.meta!.uuid,
      o.document.compute!.meta!.uuid,
    ]);
    expect(new Set(uuids).size).toBe(uuids.length);
  });

  it('counts what accepted and running steps hold', () => {
    const busy = [{ start: now - HOUR, end: now + 3 * HOUR, cores: 30, memoryGiB: 4, storageGiB: 0 }];
    const made = make(request('001-001-offerset-request.yaml'), { bookings: busy });
    expect(made.offers[0]!.start).toBeGreaterThanOrEqual(now + 3 * HOUR - 60_000);
  });

  it('says NO, and why, when nothing fits', () => {
    const full = [{ start: now - HOUR, end: now + 48 * HOUR, cores: 30, memoryGiB: 0, storageGiB: 0 }];
    const made = make(request('001-001-offerset-request.yaml'), { bookings: full });
    expect(made.offerSet.result).toBe('NO');
    expect(made.offerSet.meta!.messages!.at(-1)).toMatchObject({
      level: 'ERROR',
      kind: 'urn:no-capacity',
      message: expect.stringContaining('5 cores'),
    });
  });

  it('says NO for a step beyond the site limits, naming the limit; caps a max with a warning', () => {
    const req = request('001-001-offerset-request.yaml');
    const tooBig = {
      ...req,
      compute: { ...req.compute!, cores: { min: 32, max: 40 } },
    } as Ivoa.ExecutionRequest;
    const made = make(tooBig);
    expect(made.offerSet.result).toBe('NO');
    expect(made.offerSet.meta!.messages!.map((m) => m.message)).toContain(
      'Compute asks for at least 32 cores of cores; this site allows 16',
    );
    const capped = make({
      ...req,
      compute: { ...req.compute!, cores: { min: 2, max: 40 } },
    } as Ivoa.ExecutionRequest);
    expect(capped.offerSet.result).toBe('YES');
    expect(capped.offerSet.meta!.messages![0]).toMatchObject({ level: 'WARN', kind: 'urn:resource-limit' });
  });

  it('adds default compute and a storage for each data resource without one, and links them', () => {
    const made = make(request('example-009-001-offerset-request.yaml'));
    expect(made.offerSet.result).toBe('YES');
    const offer = made.offers[0]!.document;
    expect(offer.storage).toHaveLength(offer.data!.length);
    for (const data of offer.data!) {
      const storage = offer.storage!.find((s) => s.meta!.uuid === data.storage)!;
      expect(storage.data).toEqual([data.meta!.uuid]);
      expect(storage.meta!.name).toMatch(/^Storage for \[/);
    }
  });

  it('refuses a data resource pointing at storage that does not exist', () => {
    const made = make({
      executable: { kind: KINDS.JupyterNotebook!, location: 'https://example.org/n.ipynb' },
      data: [{ kind: KINDS.SimpleDataResource!, location: 'https://example.org/d', storage: 'nowhere' }],
    } as Ivoa.ExecutionRequest);
    expect(made.offerSet.result).toBe('NO');
    expect(made.offerSet.meta!.messages![0]).toMatchObject({
      kind: 'urn:resource-not-found',
      message: expect.stringContaining('[nowhere]'),
    });
  });

  it('never starts before the preparation can finish, and honours a later requested start', () => {
    const slow = { boundSeconds: 3 * 3600, medianSeconds: 3600, components: [] };
    const made = make(request('003-001-offerset-request.json'), { estimate: slow });
    expect(made.offers[0]!.start).toBeGreaterThanOrEqual(now + 3 * HOUR);
    const later = request('003-001-offerset-request.json');
    later.schedule = { requested: { duration: 'PT30M', start: '2026-11-28T18:00:00Z/2026-11-28T20:00:00Z' } };
    const made2 = make(later);
    expect(made2.offers[0]!.start).toBe(Date.parse('2026-11-28T18:00:00Z'));
    expect(made2.offers.map((o) => o.end - o.start)).toEqual([HOUR, HOUR, HOUR, HOUR]);
  });

  it("answers NO with the estimate's refusal, and passes its warnings on with the offers", () => {
    const refusal = {
      kind: 'urn:bad-value',
      template: 'The image named by ${field} cannot be used: ${problem}',
      values: { field: 'executable.image.digest', problem: 'digest mismatch' },
    };
    const no = make(request('003-001-offerset-request.json'), {
      estimate: { ...constantEstimate, refusals: [refusal] },
    });
    expect(no.offerSet.result).toBe('NO');
    expect(no.offerSet.meta!.messages!.map((m) => m.message)).toContain(
      'The image named by executable.image.digest cannot be used: digest mismatch',
    );
    const warned = make(request('003-001-offerset-request.json'), {
      estimate: { ...constantEstimate, warnings: [{ ...refusal, kind: 'urn:image-not-checked' }] },
    });
    expect(warned.offerSet.result).toBe('YES');
    expect(warned.offerSet.meta!.messages).toContainEqual(
      expect.objectContaining({ level: 'WARN', kind: 'urn:image-not-checked' }),
    );
  });

  it("gives each offer the estimate's actions under that offer's component uuids, with its ready times", () => {
    const req = request('003-001-offerset-request.json');
    const checked = checkRequest(req, rules.limits, new Date(now));
    const components = [
      {
        role: 'compute',
        uuid: checked.compute.meta!.uuid,
        action: 'session-start' as const,
        medianSeconds: 3,
        boundSeconds: 5,
        quantile: 0.95,
        basis: { group: 'test', n: 9, level: 'coarse' as const },
      },
      // Storage has no action of its own: it counts in the step's figures only.
      {
        role: 'storage',
        medianSeconds: 1,
        boundSeconds: 1,
        basis: { group: 's', n: 0, level: 'default' as const },
      },
    ];
    const estimate = { medianSeconds: 3, boundSeconds: 5, quantile: 0.9, components };
    const made = make(req, { checked, estimate });
    const uuids = made.offers.map((offer) => offer.estimates.actions.map((a) => a.component));
    expect(uuids).toEqual(made.offers.map((offer) => [offer.document.compute!.meta!.uuid]));
    expect(new Set(uuids.flat()).size).toBe(made.offers.length);
    for (const offer of made.offers) {
      expect(offer.estimates).toMatchObject({ quantile: 0.9, medianSeconds: 3, boundSeconds: 5 });
      expect(offer.estimates.actions[0]).toMatchObject({ quantile: 0.95, basis: { n: 9, level: 'coarse' } });
      const preparing = Date.parse(offer.document.schedule!.preparing!.start!);
      expect(Date.parse(offer.estimates.readyBoundAt)).toBe(offer.start);
      expect(Date.parse(offer.estimates.readyMedianAt)).toBe(preparing + 3000);
      expect(offer.start - preparing).toBe(5000);
    }
  });

  it('direct execution asks for one offer', () => {
    expect(make(request('003-001-offerset-request.json'), { maxOffers: 1 }).offers).toHaveLength(1);
  });
});

describe('ISO-8601 times', () => {
  it('reads and writes durations and intervals', () => {
    expect(parseDuration('PT1H')).toBe(HOUR);
    expect(parseDuration('P1DT2H30M')).toBe(26.5 * HOUR);
    expect(parseDuration('P1M')).toBeUndefined();
    expect(formatDuration(26.5 * HOUR)).toBe('P1DT2H30M');
    expect(formatDuration(0)).toBe('PT0S');
    expect(parseIntervalStart('2023-08-09/PT2H')).toEqual({
      start: Date.parse('2023-08-09T00:00:00Z'),
      end: Date.parse('2023-08-09T02:00:00Z'),
    });
    expect(parseIntervalStart('PT2H/2023-08-09T12:00:00Z')).toEqual({
      start: Date.parse('2023-08-09T10:00:00Z'),
      end: Date.parse('2023-08-09T12:00:00Z'),
    });
    expect(parseIntervalStart('2023-08-09T13:00:00Z/2023-08-09T12:00:00Z')).toBeUndefined();
  });
});
