import { describe, expect, it } from 'vitest';
import { evaluate } from './evaluation.ts';
import { generateTrace } from './synthetic.ts';
import { ACTIONS, type Observation } from './types.ts';

// Seeds and drifts the estimator was never tuned on.
const UNSEEN = [
  { seed: 2024, drift: 0.3 },
  { seed: 31337, drift: 0.8 },
  { seed: 4242, drift: 1.2 },
];

describe.each(UNSEEN)('replaying an unseen trace (seed $seed, drift $drift)', ({ seed, drift }) => {
  const result = evaluate(generateTrace({ seed, count: 20_000, drift }));

  it.each(ACTIONS)('covers %s with its 90%% bound between 87%% and 93%% of the time', (action) => {
    const score = result.byAction[action]!;
    expect(score.n).toBeGreaterThan(3000);
    expect(score.coverage).toBeGreaterThanOrEqual(0.87);
    expect(score.coverage).toBeLessThanOrEqual(0.93);
  });

  it.each(ACTIONS)('errs on the median of %s at least 30%% less than a running mean', (action) => {
    expect(result.byAction[action]!.mdape).toBeLessThan(0.7 * result.baselines.mean.byAction[action]!.mdape);
  });

  it('beats both baselines overall and rests mostly on fine groups', () => {
    expect(result.overall.mdape).toBeLessThan(0.7 * result.baselines.mean.overall.mdape);
    expect(result.overall.mdape).toBeLessThan(0.7 * result.baselines.constants.overall.mdape);
    expect(result.levels.exact + result.levels.coarse).toBeGreaterThan(0.9 * result.overall.n);
    expect(result.failed).toBeGreaterThan(0);
  });
});

describe('the replay', () => {
  const at = (seconds: number) => new Date(Date.UTC(2026, 0, 5) + seconds * 1000).toISOString();
  const copy = (start: number, durationSeconds: number, outcome: 'ok' | 'failed' = 'ok'): Observation => ({
    action: 'image-copy',
    params: { bytes: 1e9, registry: 'ghcr.io', local: false },
    startedAt: at(start),
    durationSeconds,
    outcome,
  });

  it('learns from an action only once it has finished', () => {
    // Twenty copies that overlap: none has finished when the next starts.
    const overlapping = Array.from({ length: 20 }, (_, i) => copy(i, 100));
    expect(evaluate(overlapping).levels.default).toBe(20);
    // The same copies one after another: from the ninth on, estimates rest on data.
    const sequential = Array.from({ length: 20 }, (_, i) => copy(i * 200, 100));
    expect(evaluate(sequential).levels.default).toBe(8);
  });

  it('replays in time order whatever the order of the file', () => {
    const trace = generateTrace({ seed: 5150, count: 2000, drift: 0.5 });
    const shuffled = [...trace].reverse();
    expect(evaluate(shuffled)).toEqual(evaluate(trace));
  });

  it('neither scores nor learns from failed actions', () => {
    const trace = [...Array.from({ length: 10 }, (_, i) => copy(i * 200, 100, 'failed')), copy(5000, 100)];
    const result = evaluate(trace);
    expect(result.failed).toBe(10);
    expect(result.overall.n).toBe(1);
    expect(result.levels.default).toBe(1);
  });
});
