import { describe, expect, it } from 'vitest';
import { nestingProblem } from './nesting.ts';

const nested = (depth: number) => JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown;

describe('nestingProblem', () => {
  it('accepts a document at the limit and names where one below it goes too deep', () => {
    expect(nestingProblem(nested(64))).toBeUndefined();
    expect(nestingProblem(nested(65))).toEqual({
      path: '/a'.repeat(64),
      message: 'nests deeper than 64 levels',
    });
    expect(nestingProblem({ 'x/y': nested(3) }, 2)).toEqual({
      path: '/x~1y/a',
      message: 'nests deeper than 2 levels',
    });
  });

  it('walks 100,000 levels without exhausting the stack', () => {
    expect(nestingProblem(nested(100_000))?.path.length).toBe(128);
  });
});
