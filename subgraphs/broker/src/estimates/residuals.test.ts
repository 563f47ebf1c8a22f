import { describe, expect, it } from 'vitest';
import { RecentResiduals } from './residuals.ts';

const filled = (values: number[], capacity = 256, decay = 1) => {
  const r = new RecentResiduals(capacity, decay);
  for (const v of values) r.add(v);
  return r;
};

describe('recent residuals', () => {
  it('gives the split-conformal order statistic when nothing decays', () => {
    // 19 values, level 0.9: the ceil(20 × 0.9) = 18th smallest.
    const r = filled([7, 3, 19, 1, 12, 5, 16, 9, 2, 14, 18, 4, 11, 8, 17, 6, 13, 10, 15]);
    expect(r.bound(0.9)).toBe(18);
    expect(r.median()).toBe(10);
  });

  it('forgets the oldest residual when the window is full', () => {
    const r = filled([100, 100, 1, 2, 3, 4], 4);
    expect(r.size).toBe(4);
    expect(r.median()).toBe(2);
    expect(r.bound(0.5)).toBeLessThan(100);
  });

  it('lets recent residuals outweigh many older ones', () => {
    const r = filled([...Array<number>(100).fill(0), 1, 1, 1, 1, 1], 128, 0.5);
    expect(r.median()).toBe(1);
    expect(r.weight).toBeCloseTo(2, 5);
  });

  it('extrapolates the tail when the window is too light for the level', () => {
    const values = Array.from({ length: 30 }, (_, i) => Math.log(1 + i));
    const r = filled(values, 64, 0.98);
    const largest = Math.max(...values);
    const levels = [0.9, 0.97, 0.99, 0.999];
    const bounds = levels.map((q) => r.bound(q));
    expect(bounds.every(Number.isFinite)).toBe(true);
    expect(bounds[1]).toBeGreaterThanOrEqual(largest);
    for (let i = 1; i < bounds.length; i++) expect(bounds[i]).toBeGreaterThan(bounds[i - 1]!);
  });

  it('has no bound without residuals', () => {
    const r = new RecentResiduals(8, 0.9);
    expect(r.bound(0.9)).toBe(Infinity);
    expect(r.median()).toBe(0);
  });

  it('rejects a window it cannot keep', () => {
    expect(() => new RecentResiduals(0, 0.9)).toThrow(/capacity/);
    expect(() => new RecentResiduals(8, 1.5)).toThrow(/decay/);
  });
});
