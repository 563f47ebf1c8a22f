/** The subgraph: sessions as steps, owner isolation, one listing per request, renew and context. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSupergraph } from '../../../gateway/src/compose/compose.ts';
import { brokerSubgraphSdl, validateExecutionStep, type Ivoa } from '@srcnet/execution-step-schema';
import { SkahaClient } from '../src/skaha/index.ts';
import { readFileSync } from 'node:fs';
import { skahaStack, waitFor } from './stack.ts';

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

type Stack = Awaited<ReturnType<typeof skahaStack>>;
let stack: Stack;
const steps: string[] = [];
let ownSessionId: string;

async function gql(query: string, variables: Record<string, unknown> = {}, user?: string) {
  const response = await fetch(`${stack.worker.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(user ? { authorization: `Bearer dev:${user}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string }[] };
}

function notebookCommand(owner: string): Ivoa.WorkerCommand {
  const stepId = randomUUID();
  steps.push(stepId);
  return {
    commandId: `${stepId}:prepare`,
    action: 'prepare',
    stepId,
    owner,
    component: { role: 'compute', uuid: randomUUID(), kind: `${KIND}compute/simple-compute-resource.yaml` },
    step: {
      kind: `${KIND}session/scheduled-execution-session.yaml`,
      executable: {
        kind: `${KIND}executable/jupyter-notebook.yaml`,
        location: 'https://example.org/a.ipynb',
      },
      compute: {
        kind: `${KIND}compute/simple-compute-resource.yaml`,
        cores: { min: 2, max: 2 },
        memory: { min: 8, max: 8 },
      },
    } as Ivoa.ScheduledExecutionSession,
    callbackUrl: 'http://127.0.0.1:9/callbacks',
  };
}

beforeAll(async () => {
  stack = await skahaStack();
  await stack.worker.tracker.handle(notebookCommand('alice'));
  await stack.worker.tracker.handle(notebookCommand('alice'));
  await stack.worker.tracker.handle(notebookCommand('bob'));
  // A session of the service's own Skaha user, not launched by the broker.
  const direct = new SkahaClient({ baseUrl: stack.skaha.apiUrl, token: 'dev:dev' });
  ownSessionId = (
    await direct.createSession({
      name: 'my-own',
      image: 'images.canfar.net/skaha/astroml:26.04',
      type: 'notebook',
    })
  ).id;
  await waitFor('sessions running', async () => {
    const sessions = await direct.listSessions();
    return sessions.length === 4 && sessions.every((s) => s.status === 'Running') ? true : undefined;
  });
});
afterAll(() => stack.stop());

const SESSION_FIELDS = `id name status type image connectURL startTime expiryTime requestedCores requestedRAM
  requestedGPUs usedCores usedRAM isFixedResources userid stepId compute { cores { min max } memory { min max } }`;

describe('the Skaha subgraph', () => {
  it('composes with the broker subgraph', () => {
    const sdl = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');
    expect(() =>
      composeSupergraph([
        { name: 'broker', url: 'http://broker/graphql', sdl: brokerSubgraphSdl() },
        { name: 'skaha', url: 'http://skaha/graphql', sdl },
      ]),
    ).not.toThrow();
  });

  it('resolves ExecutionStep.skahaSession for the owner only, with one Skaha listing for all steps', async () => {
    stack.skaha.resetStats();
    const query = `query($r: [_Any!]!) { _entities(representations: $r) { ... on ExecutionStep { id skahaSession { ${SESSION_FIELDS} } } } }`;
    const representations = steps.map((id) => ({ __typename: 'ExecutionStep', id }));
    const result = await gql(query, { r: representations }, 'alice');
    expect(result.errors).toBeUndefined();
    const entities = result.data!._entities as { id: string; skahaSession: Record<string, unknown> | null }[];
    expect(entities.map((e) => e.skahaSession !== null)).toEqual([true, true, false]);
    expect(entities[0]!.skahaSession).toMatchObject({
      status: 'Running',
      type: 'notebook',
      requestedCores: 2,
      requestedRAM: 8,
      isFixedResources: true,
      stepId: steps[0],
      compute: { cores: { min: 2, max: 2 }, memory: { min: 8, max: 8 } },
    });
    expect(entities[0]!.skahaSession!.connectURL).toMatch(/^https:\/\/.*\/notebook\//);
    expect(stack.skaha.stats().requests.byOperation).toEqual({ listSessions: 1 });
  });

  it('lists the caller’s sessions as steps: broker-launched ones by step id, others by a stable derived id', async () => {
    const query = `{ skahaSessions { id executionStep { id } asExecutionStep session { id userid stepId } } }`;
    const alice = (await gql(query, {}, 'alice')).data!.skahaSessions as {
      id: string;
      executionStep: { id: string } | null;
      asExecutionStep: Ivoa.ScheduledExecutionSession;
    }[];
    expect(alice.map((s) => s.id).sort()).toEqual(steps.slice(0, 2).sort());
    expect(alice.every((s) => s.executionStep?.id === s.id)).toBe(true);
    for (const entry of alice) {
      expect(validateExecutionStep(entry.asExecutionStep).ok).toBe(true);
      expect(entry.asExecutionStep).toMatchObject({
        phase: 'AVAILABLE',
        compute: { cores: { min: 2, max: 2 } },
      });
      expect(entry.asExecutionStep.connectors?.[0]?.kind).toBe('urn:jupyter-notebook');
    }

    const first = (await gql(query)).data!.skahaSessions as { id: string; session: { id: string } }[];
    const again = (await gql(query)).data!.skahaSessions as { id: string; session: { id: string } }[];
    expect(first.map((s) => s.session.id)).toEqual([ownSessionId]);
    expect(first[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(again[0]!.id).toBe(first[0]!.id);
  });

  it('shows a flexible session as the range from the flexible request to its limit', async () => {
    const result = await gql(
      `{ skahaSessions { asExecutionStep session { isFixedResources compute { cores { min max } memory { min max } } } } }`,
    );
    const [entry] = result.data!.skahaSessions as {
      asExecutionStep: unknown;
      session: Record<string, unknown>;
    }[];
    expect(entry!.session).toEqual({
      isFixedResources: false,
      compute: { cores: { min: 1, max: 8 }, memory: { min: 4, max: 32 } },
    });
    expect(validateExecutionStep(entry!.asExecutionStep).ok).toBe(true);
  });

  it('gives Skaha’s context and renews only the caller’s sessions', async () => {
    const context = await gql(
      `{ skahaContext { cores { defaultRequest defaultLimit } memory { options } maxInteractiveSessions } }`,
    );
    expect(context.data!.skahaContext).toMatchObject({
      cores: { defaultRequest: 1, defaultLimit: 8 },
      maxInteractiveSessions: 5,
    });

    const renew = `mutation($id: ID!) { renewSkahaSession(id: $id) { id expiryTime } }`;
    const mine = await gql(renew, { id: ownSessionId });
    expect(mine.errors).toBeUndefined();
    expect(mine.data!.renewSkahaSession).toMatchObject({ id: ownSessionId });
    const notHers = await gql(renew, { id: ownSessionId }, 'alice');
    expect(notHers.errors?.[0]?.message).toContain('no Skaha session');
  });
});
