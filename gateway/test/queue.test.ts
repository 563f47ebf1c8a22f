import { describe, expect, it } from 'vitest';
import { SubscriberQueue } from '../src/fanout/queue.ts';

const state = (id: string, phase: string) => ({ data: { executionStepChanged: { id, phase } } });

async function drain(queue: SubscriberQueue, count: number) {
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) out.push((await queue.next()).value);
  return out;
}

describe('a subscriber queue released with the current state', () => {
  it('drops the events of one step that the current state already shows, and keeps the later ones', async () => {
    const queue = new SubscriberQueue(10, () => {});
    // Arrived while the current state was read, which saw the second of them.
    queue.push(state('s1', 'PREPARING'));
    queue.push(state('s1', 'AVAILABLE'));
    queue.push(state('s1', 'RUNNING'));
    queue.release([state('s1', 'AVAILABLE')], true);
    queue.push(state('s1', 'COMPLETED'));
    expect(await drain(queue, 3)).toEqual([
      state('s1', 'AVAILABLE'),
      state('s1', 'RUNNING'),
      state('s1', 'COMPLETED'),
    ]);
  });

  it('keeps every held event of one step when the current state was read before them', async () => {
    const queue = new SubscriberQueue(10, () => {});
    queue.push(state('s1', 'PREPARING'));
    queue.push(state('s1', 'AVAILABLE'));
    queue.release([state('s1', 'ACCEPTED')], true);
    expect(await drain(queue, 3)).toEqual([
      state('s1', 'ACCEPTED'),
      state('s1', 'PREPARING'),
      state('s1', 'AVAILABLE'),
    ]);
  });

  it('for all of a user’s steps, drops only the events equal to a current state', async () => {
    const queue = new SubscriberQueue(10, () => {});
    queue.push(state('s1', 'RUNNING'));
    queue.push(state('s2', 'PREPARING'));
    queue.release([state('s1', 'RUNNING'), state('s2', 'ACCEPTED')], false);
    expect(await drain(queue, 3)).toEqual([
      state('s1', 'RUNNING'),
      state('s2', 'ACCEPTED'),
      state('s2', 'PREPARING'),
    ]);
  });
});
