/**
 * End to end with the real broker in-process: the broker sends compute and notebook commands to
 * the worker, the worker drives the Skaha emulator (callbacks on) and reports back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LATEST_COMPONENTS, signedHeaders } from '@srcnet/service-kit';
import { expectLatestCallbacks } from '../../shared/src/testing/latest.ts';
import { BROKEN, BROKEN_MESSAGE, containerRequest, fullStack, notebookRequest, waitFor } from './stack.ts';

type Stack = Awaited<ReturnType<typeof fullStack>>;
let stack: Stack;
beforeAll(async () => {
  stack = await fullStack();
});
afterAll(() => stack.stop());

const asAlice = { authorization: 'Bearer dev:alice' };

async function direct(request: unknown): Promise<string> {
  const response = await fetch(`${stack.broker.url}/direct`, {
    method: 'POST',
    redirect: 'manual',
    headers: { ...asAlice, 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  expect(response.status).toBe(303);
  return ((await response.json()) as { meta: { uuid: string } }).meta.uuid;
}

interface StepDocument {
  phase: string;
  connectors?: { kind: string; status: string; protocol: string; location: string }[];
  meta: { messages?: { message: string }[] };
  compute: { uuid?: string; meta?: { uuid: string } };
}

async function step(id: string): Promise<StepDocument> {
  const response = await fetch(`${stack.broker.url}/sessions/${id}`, {
    headers: { ...asAlice, accept: 'application/json' },
  });
  return (await response.json()) as StepDocument;
}

const reaches = (id: string, phase: string) =>
  waitFor(`step ${id} ${phase}`, async () => {
    const doc = await step(id);
    return doc.phase === phase ? doc : undefined;
  });

async function sessionOf(stepId: string) {
  const row = await stack.worker.db
    .selectFrom('sessions')
    .selectAll()
    .where('step_id', '=', stepId)
    .executeTakeFirst();
  return row!;
}

const phases = async (id: string) =>
  [...(await stack.broker.broker.history([id])).get(id)!].map((h) => h.to).filter((p) => p !== 'WAITING');

describe('the Skaha worker behind the broker', () => {
  it('runs with Skaha callbacks', () => {
    expect(stack.worker.callbacks).toBe(true);
  });

  it('a notebook step goes ACCEPTED → PREPARING → AVAILABLE with its Skaha session URL as connector', async () => {
    const id = await direct(notebookRequest());
    const available = await reaches(id, 'AVAILABLE');
    const row = await sessionOf(id);
    expect(row.type).toBe('notebook');
    expect(available.connectors).toEqual([
      {
        kind: 'urn:jupyter-notebook',
        status: 'AVAILABLE',
        protocol: 'HTTPS',
        location: `https://sessions.canfar.emulator/session/notebook/${row.session_id}/lab/tree/arc/home/dev?token=${row.session_id}`,
      },
    ]);
    expect(await phases(id)).toEqual(['OFFERED', 'ACCEPTED', 'PREPARING', 'AVAILABLE']);
  });

  it('a headless DockerContainer step runs to COMPLETED, launched with its command, environment and compute', async () => {
    const id = await direct(containerRequest());
    await reaches(id, 'COMPLETED');
    expect(await phases(id)).toEqual([
      'OFFERED',
      'ACCEPTED',
      'PREPARING',
      'AVAILABLE',
      'RUNNING',
      'RELEASING',
      'COMPLETED',
    ]);
    const row = await sessionOf(id);
    expect(row).toMatchObject({ type: 'headless', cores: 2, memory_gib: 4, fixed: 1, phase: 'COMPLETED' });
    const snapshot = JSON.parse(row.snapshot!) as Record<string, unknown>;
    expect(snapshot).toMatchObject({ requestedCPUCores: '2', requestedRAM: '4.00', isFixedResources: true });
  });

  it('answers the broker’s POST /components/latest with the last callback of each component', async () => {
    const id = await direct(containerRequest());
    await reaches(id, 'COMPLETED');
    const secret = stack.broker.config.callbackSecret;
    // The compute component (the image is the simulated Harbor's).
    const [last] = await waitFor('the last callback applied', async () => {
      try {
        return await expectLatestCallbacks({
          workerUrl: stack.worker.url,
          secret,
          brokerDb: stack.broker.store.db,
          stepId: id,
          components: 1,
        });
      } catch {
        return undefined;
      }
    });
    expect(last!.phase).toBe('COMPLETED');

    const post = (body: string, headers: Record<string, string>) =>
      fetch(`${stack.worker.url}/components/latest`, { method: 'POST', headers, body });
    const unsigned = await post('{"components": []}', { 'content-type': 'application/json' });
    expect(unsigned.status).toBe(401);
    const many = JSON.stringify({ components: Array.from({ length: MAX_LATEST_COMPONENTS + 1 }, () => id) });
    const tooMany = await post(many, signedHeaders(secret, many, 'too-many'));
    expect(tooMany.status).toBe(400);
    expect(await tooMany.json()).toMatchObject({ issues: [{ path: '/components', rule: 'max-items' }] });
    const notArray = '{"components": "all"}';
    const wrong = await post(notArray, signedHeaders(secret, notArray, 'not-array'));
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ issues: [{ path: '/components', rule: 'required' }] });
  });

  it('a headless step whose session fails is FAILED with the message Skaha gave', async () => {
    const id = await direct(containerRequest(BROKEN));
    const failed = await reaches(id, 'FAILED');
    expect(JSON.stringify(failed.meta.messages ?? [])).toContain(BROKEN_MESSAGE);
  });

  it('cancel deletes the session: CANCELLED once Skaha no longer has it', async () => {
    const id = await direct(notebookRequest());
    await reaches(id, 'AVAILABLE');
    const { session_id } = await sessionOf(id);
    const response = await fetch(`${stack.broker.url}/sessions/${id}`, {
      method: 'POST',
      headers: { ...asAlice, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ kind: 'uri:enum-value-update', path: 'phase', value: 'CANCELLED' }),
    });
    expect(response.status).toBe(200);
    await waitFor('the session gone', async () =>
      (await sessionOf(id)).status === 'Deleted' ? true : undefined,
    );
    expect((await sessionOf(id)).phase).toBe('CANCELLED');
    const perSession = stack.skaha.stats().requests.bySession[session_id!];
    expect(perSession).toEqual({ createSession: 1, deleteSession: 1 });
  });

  it('costs Skaha one create and one delete per step, and no status request at all', async () => {
    stack.skaha.resetStats();
    const ids = await Promise.all([
      direct(containerRequest()),
      direct(containerRequest()),
      direct(notebookRequest()),
    ]);
    await Promise.all(ids.slice(0, 2).map((id) => reaches(id, 'COMPLETED')));
    await reaches(ids[2]!, 'AVAILABLE');
    await waitFor('deletes', async () =>
      (stack.skaha.stats().requests.byOperation.deleteSession ?? 0) >= 2 ? true : undefined,
    );
    const { requests } = stack.skaha.stats();
    for (const id of ids) {
      const row = await sessionOf(id);
      const expected =
        row.type === 'headless' ? { createSession: 1, deleteSession: 1 } : { createSession: 1 };
      expect(requests.bySession[row.session_id!]).toEqual(expected);
    }
    expect(requests.byOperation.getSession ?? 0).toBe(0);
    expect(requests.byOperation.listSessions ?? 0).toBe(0);
    expect(requests.byOperation.registerCallback ?? 0).toBe(0);
  });
});
