import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStack } from './support/stack.ts';

let stack: Awaited<ReturnType<typeof testStack>>;
beforeAll(async () => {
  stack = await testStack({
    env: { MAX_DEPTH: '4', MAX_ALIASES: '3', MAX_TOKENS: '200', MAX_COST: '20', RATE_LIMIT_PER_MINUTE: '30' },
  });
});
afterAll(() => stack.close());

const refusal = async (query: string, token = 'dev:limits') => {
  const answer = await stack.post(query, {}, token);
  expect(answer.body.data).toBeUndefined();
  return answer.body.errors![0].message as string;
};

describe('limits', () => {
  it('refuses an over-deep query, naming the limit and the depth found', async () => {
    expect(await refusal('{ executionSteps { edges { node { meta { owner } history { to } } } } }')).toBe(
      'Syntax Error: Query depth limit of 4 exceeded, found 5.',
    );
  });

  it('refuses too many aliases', async () => {
    expect(
      await refusal(
        '{ steps: executionSteps { a: pageInfo { b: hasNextPage c: endCursor d: hasNextPage } } }',
      ),
    ).toBe('Syntax Error: Aliases limit of 3 exceeded, found 5.');
  });

  it('refuses an over-costly query', async () => {
    expect(
      await refusal(
        '{ executionSteps { edges { cursor node { id kind phase } } pageInfo { hasNextPage endCursor } } }',
      ),
    ).toMatch(/^Syntax Error: Query Cost limit of 20 exceeded, found [\d.]+\.$/);
  });

  it('refuses an over-long document before parsing it all', async () => {
    expect(await refusal(`{ ${'__typename '.repeat(250)} }`)).toBe(
      'Syntax Error: Token limit of 200 exceeded.',
    );
  });

  it('limits each identity to its rate, with 429 and Retry-After, leaving others alone', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) statuses.push((await stack.post('{ __typename }', {}, 'dev:busy')).status);
    expect(statuses.slice(0, 30).every((status) => status === 200)).toBe(true);
    const refused = await stack.post('{ __typename }', {}, 'dev:busy');
    expect(refused.status).toBe(429);
    expect(refused.body.errors![0]).toMatchObject({
      message: expect.stringMatching(
        /^rate limit: at most 30 operations a minute for user busy; retry in \d+ s$/,
      ),
      extensions: { code: 'RATE_LIMITED' },
    });
    expect((await stack.post('{ __typename }', {}, 'dev:calm')).status).toBe(200);
  });
});
