import { describe, expect, it } from 'vitest';
import { createEstimator, type Estimator } from './estimator.ts';
import { Random } from './random.ts';
import { generateTrace } from './synthetic.ts';
import type { DataStagingParams, Observation } from './types.ts';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Feeds data stagings from one site whose duration is latency + bytes / bandwidth, with noise. */
function stager(estimator: Estimator, seed: number) {
  const random = new Random(seed);
  let t = Date.parse('2026-03-02T00:00:00Z');
  return (
    site: string,
    latency: number,
    bandwidth: number,
    bytes = random.logUniform(1e9, 1e10),
    inFlight = 0,
  ) => {
    t += 10 * 60_000;
    estimator.observe({
      action: 'data-staging',
      params: { bytes, sourceSite: site, targetStorage: 'scratch', inFlight },
      startedAt: new Date(t).toISOString(),
      durationSeconds: (latency + bytes / bandwidth) * random.logNormal(1, 0.3),
      outcome: 'ok',
    });
  };
}

const staging = (sourceSite: string, bytes: number, inFlight = 0): DataStagingParams => ({
  bytes,
  sourceSite,
  targetStorage: 'scratch',
  inFlight,
});

describe('fallback from sparse groups', () => {
  it('uses the reference constants until an action has data', () => {
    const e = createEstimator();
    const data = e.estimate('data-staging', staging('A', 5e9));
    expect(data).toMatchObject({ medianSeconds: 30, boundSeconds: 30, basis: { n: 0, level: 'default' } });
    expect(e.estimate('image-copy', { bytes: 1e9, registry: 'ghcr.io', local: true }).medianSeconds).toBe(1);
    expect(e.estimate('image-copy', { bytes: 1e9, registry: 'ghcr.io', local: false }).medianSeconds).toBe(
      60,
    );
    const session = (type: string) => ({ type, cores: 2, memoryGiB: 4, inFlight: 0 });
    expect(e.estimate('session-start', session('notebook')).medianSeconds).toBe(5);
    expect(e.estimate('session-start', session('headless')).medianSeconds).toBe(1);
  });

  it('moves from default to exact, coarse and action groups as they fill', () => {
    const e = createEstimator({ minObservations: 8 });
    const add = stager(e, 1);
    for (let i = 0; i < 7; i++) add('A', 20, 1e8, 5e9);
    expect(e.estimate('data-staging', staging('A', 5e9)).basis.level).toBe('default');
    add('A', 20, 1e8, 5e9);
    expect(e.estimate('data-staging', staging('A', 5e9)).basis).toEqual({
      group: 'data-staging site=A size=1GB..10GB inFlight=0',
      n: 8,
      level: 'exact',
    });
    // Same site, another size decade: the site's group.
    expect(e.estimate('data-staging', staging('A', 5e7)).basis).toMatchObject({ level: 'coarse', n: 8 });
    // A site never seen: every staging.
    expect(e.estimate('data-staging', staging('B', 5e9)).basis).toMatchObject({ level: 'action', n: 8 });
    // Site B's observations spread over decades: coarse for B before any of its exact groups.
    for (const bytes of [1e7, 1e8, 1e9, 1e10]) for (let i = 0; i < 2; i++) add('B', 5, 5e8, bytes);
    expect(e.estimate('data-staging', staging('B', 3e9)).basis).toMatchObject({ level: 'coarse', n: 8 });
    // Other actions are untouched.
    expect(
      e.estimate('session-start', { type: 'notebook', cores: 1, memoryGiB: 2, inFlight: 0 }).basis.level,
    ).toBe('default');
  });

  it('learns nothing from failed actions', () => {
    const e = createEstimator();
    for (let i = 0; i < 50; i++) {
      e.observe({
        action: 'image-copy',
        params: { bytes: 1e9, registry: 'ghcr.io', local: false },
        startedAt: '2026-03-02T10:00:00Z',
        durationSeconds: 900,
        outcome: 'failed',
      });
    }
    expect(e.estimate('image-copy', { bytes: 1e9, registry: 'ghcr.io', local: false }).basis.level).toBe(
      'default',
    );
  });

  it('rejects options it cannot honour, naming them', () => {
    expect(() => createEstimator({ quantile: 1 })).toThrow('quantile must be in (0.5, 1)');
    expect(() => createEstimator({ quantile: 0.3 })).toThrow('quantile must be in (0.5, 1)');
    expect(() => createEstimator({ window: 0 })).toThrow('window must be a positive integer');
    expect(() => createEstimator({ learningRate: 0 })).toThrow('learningRate must be in (0, 1]');
  });
});

describe('the model', () => {
  it('tells a large transfer from a slow site from a small one from a fast site', () => {
    const e = createEstimator();
    const random = new Random(7);
    const add = stager(e, 8);
    for (let i = 0; i < 300; i++) {
      add('SLOW', 60, 10e6, random.logUniform(1e7, 1e11));
      add('FAST', 5, 1e9, random.logUniform(1e7, 1e11));
    }
    const slow = e.estimate('data-staging', staging('SLOW', 25 * GiB));
    const fast = e.estimate('data-staging', staging('FAST', 25 * MiB));
    expect(slow.medianSeconds).toBeGreaterThan(100 * fast.medianSeconds);
    const truth = 60 + (25 * GiB) / 10e6;
    expect(slow.medianSeconds / truth).toBeGreaterThan(0.7);
    expect(slow.medianSeconds / truth).toBeLessThan(1.3);
    expect(slow.boundSeconds).toBeGreaterThan(slow.medianSeconds);
  });

  it('follows a bandwidth change within a bounded number of observations', () => {
    const e = createEstimator();
    const add = stager(e, 21);
    const ratio = (bandwidth: number) =>
      e.estimate('data-staging', staging('X', 5e9)).medianSeconds / (20 + 5e9 / bandwidth);
    for (let i = 0; i < 300; i++) add('X', 20, 100e6);
    expect(Math.abs(ratio(100e6) - 1)).toBeLessThan(0.25);
    // The site becomes four times slower.
    const after: number[] = [];
    for (let i = 1; i <= 150; i++) {
      add('X', 20, 25e6);
      after.push(ratio(25e6));
    }
    expect(after[0]).toBeLessThan(0.5);
    const settled = after.slice(50);
    expect(Math.max(...settled.map((r) => Math.abs(r - 1)))).toBeLessThan(0.35);
  });

  it('estimates one action in well under a millisecond', () => {
    const trace = generateTrace({ seed: 31, count: 10_000, drift: 0.5 });
    const e = createEstimator();
    for (const o of trace) e.observe(o);
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) {
      const o = trace[i]!;
      e.estimate(o.action, o.params, o.startedAt);
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('preparation of a step', () => {
  const request = {
    data: [staging('A', 1e9), staging('B', 1e10)],
    image: { bytes: 2e9, registry: 'ghcr.io', local: false },
    session: { type: 'headless', cores: 4, memoryGiB: 8, inFlight: 0 },
  };

  it('runs data and image side by side, then the session', () => {
    const p = createEstimator().estimatePreparation(request);
    // Reference constants: max(30, 30, 60) + 1.
    expect(p.readyMedianSeconds).toBe(61);
    expect(p.readyBoundSeconds).toBe(61);
    expect(p.components.map((c) => c.action)).toEqual([
      'data-staging',
      'data-staging',
      'image-copy',
      'session-start',
    ]);
    expect(createEstimator().estimatePreparation({}).readyBoundSeconds).toBe(0);
  });

  it('asks each of the m components for a 1 − α/m bound, so that the sum of misses stays within α', () => {
    const e = createEstimator({ quantile: 0.9 });
    for (const o of generateTrace({ seed: 41, count: 5000, drift: 0 })) e.observe(o);
    const p = e.estimatePreparation(request);
    expect(p.quantile).toBe(0.9);
    for (const c of p.components) expect(c.quantile).toBeCloseTo(1 - 0.1 / 4, 10);
    const single = e.estimate('image-copy', request.image);
    const inPlan = p.components.find((c) => c.action === 'image-copy')!;
    expect(inPlan.boundSeconds).toBeGreaterThan(single.boundSeconds);
    expect(inPlan.medianSeconds).toBeCloseTo(single.medianSeconds, 6);
    const branch = Math.max(...p.components.slice(0, 3).map((c) => c.boundSeconds));
    expect(p.readyBoundSeconds).toBeCloseTo(branch + p.components[3]!.boundSeconds, 6);
  });

  it('bounds the time to ready at least as often as promised', () => {
    // Steps assembled from actions that ran at about the same time in an unseen trace.
    const trace = generateTrace({ seed: 43, count: 24_000, drift: 0.5 }).filter((o) => o.outcome === 'ok');
    const e = createEstimator();
    const half = trace.length / 2;
    for (const o of trace.slice(0, half)) e.observe(o);
    const pick = <A extends Observation['action']>(from: number, action: A) =>
      trace.slice(from).find((o) => o.action === action) as Extract<Observation, { action: A }>;
    let covered = 0;
    let steps = 0;
    for (let i = half; i + 60 < trace.length; i += 20) {
      const data = pick(i, 'data-staging');
      const image = pick(i, 'image-copy');
      const session = pick(i, 'session-start');
      const p = e.estimatePreparation({
        data: [data.params],
        image: image.params,
        session: session.params,
        at: data.startedAt,
      });
      const ready = Math.max(data.durationSeconds, image.durationSeconds) + session.durationSeconds;
      steps += 1;
      if (ready <= p.readyBoundSeconds) covered += 1;
      for (const o of trace.slice(i, i + 20)) e.observe(o);
    }
    expect(steps).toBeGreaterThan(300);
    expect(covered / steps).toBeGreaterThanOrEqual(0.9);
  });
});
