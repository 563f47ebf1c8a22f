/**
 * The same check for every worker's `POST /components/latest`, run by each worker's tests against
 * its stack with the real broker: the worker answers, for each component of a step it handles,
 * the last callback it generated, which is the one the broker applied last; and nothing for a
 * component it does not know.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { fetchLatestCallbacks } from '../callbacks/latest.ts';

interface BrokerCallbacks {
  component_callbacks: { component_uuid: string; step_id: string; sequence: number };
}

export async function expectLatestCallbacks(options: {
  workerUrl: string;
  secret: string;
  /** The broker's store (`RunningBroker.store.db`). */
  brokerDb: unknown;
  stepId: string;
  /** How many of the step's components this worker handles. */
  components: number;
}): Promise<Ivoa.ComponentCallback[]> {
  const db = options.brokerDb as Kysely<BrokerCallbacks>;
  const applied = await db
    .selectFrom('component_callbacks')
    .select(['component_uuid', 'sequence'])
    .where('step_id', '=', options.stepId)
    .execute();
  const unknown = randomUUID();
  const answer = (await fetchLatestCallbacks(options.workerUrl, options.secret, [
    ...applied.map((row) => row.component_uuid),
    unknown,
  ])) as Ivoa.ComponentCallback[];
  expect(answer).toHaveLength(options.components);
  for (const callback of answer) {
    expect(callback.stepId).toBe(options.stepId);
    const last = applied.find((row) => row.component_uuid === callback.componentUuid);
    expect(Number(last?.sequence)).toBe(callback.sequence);
  }
  expect(answer.map((callback) => callback.componentUuid)).not.toContain(unknown);
  return answer;
}
