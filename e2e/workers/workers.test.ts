/**
 * The three workers through the gateway on `npm start`'s wiring: a notebook becomes AVAILABLE
 * with its Skaha session's URL and cancelling it deletes the session; data from the DataLake
 * stages with progress rising on the subscription; a missing DID fails the step naming it; a
 * step cancelled mid-transfer releases its staging and the staged files go.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestFor } from '../../subgraphs/preparedata/test/stack.ts';
import { startE2EStack, subscribe, type E2EStack, STACK_START_MS } from '../support/stack.ts';

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
const WATCH = /* GraphQL */ `
  subscription Watch($id: ID) {
    executionStepChanged(id: $id) {
      id
      phase
      meta {
        messages {
          message
        }
      }
      connectors {
        location
      }
      skahaSession {
        id
        status
      }
      dataStaging {
        source
        state
        bytesDone
        bytesTotal
        localPath
        message
      }
    }
  }
`;

let stack: E2EStack;
let dataRoot: string;
let failed = false;
beforeAll(async () => {
  stack = await startE2EStack({
    name: 'workers',
    customise: (specs, _ports, dir) => {
      dataRoot = join(dir, 'staged');
      return specs.map((spec) =>
        spec.name === 'preparedata-emulator'
          ? // Ten simulated transfer seconds a second: 5 GiB from Japan in about 6 s.
            {
              ...spec,
              env: {
                ...spec.env,
                PREPAREDATA_EMULATOR_TIME_SCALE: '10',
                PREPAREDATA_EMULATOR_DATA_ROOT: dataRoot,
              },
            }
          : spec,
      );
    },
  });
}, STACK_START_MS);
afterAll(() => stack?.stop(failed));

const guard = (test: () => Promise<void>) => async () => {
  try {
    await test();
  } catch (error) {
    failed = true;
    throw error;
  }
};

async function direct(request: unknown, user: string): Promise<string> {
  const made = await stack.graphql(
    'mutation Run($request: ExecutionRequestInput!) { executeDirect(request: $request) { id } }',
    { request },
    `dev:${user}`,
  );
  expect(made.body.errors).toBeUndefined();
  return made.body.data.executeDirect.id;
}

const stepOf = (events: { data?: any }[]) =>
  events.map((event) => event.data?.executionStepChanged).filter(Boolean);

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

describe('the workers through the gateway', () => {
  it(
    'a notebook becomes AVAILABLE with its Skaha session URL as connector; cancelling deletes the session',
    guard(async () => {
      const id = await direct(
        {
          executable: {
            kind: `${KIND}executable/jupyter-notebook.yaml`,
            location: 'https://example.org/n.ipynb',
          },
          schedule: { requested: { duration: 'PT30M' } },
        },
        'nora',
      );
      const watch = subscribe(stack.ws('dev:nora'), WATCH, { id });
      await watch.until(
        (events) => stepOf(events).some((step) => step.phase === 'AVAILABLE'),
        'AVAILABLE',
        60_000,
      );
      const available = stepOf(watch.events).find((step) => step.phase === 'AVAILABLE');
      const session = available.skahaSession;
      expect(session.status).toBe('Running');
      expect(available.connectors.map((c: { location: string }) => c.location).join(' ')).toContain(
        session.id,
      );

      await stack.graphql(
        'mutation C($id: ID!) { cancelExecutionStep(id: $id) { phase } }',
        { id },
        'dev:nora',
      );
      await watch.until(
        (events) => stepOf(events).some((step) => step.phase === 'CANCELLED'),
        'CANCELLED',
        30_000,
      );
      // The worker's own Skaha user is the emulator's dev user: its session list no longer has it.
      const listed = await fetch(`http://127.0.0.1:${stack.ports.skahaEmulator}/skaha/v1/session`, {
        headers: { authorization: 'Bearer dev:dev' },
      });
      const sessions = (await listed.json()) as { id: string; status: string }[];
      const still = sessions.find((s) => s.id === session.id);
      expect(still === undefined || still.status === 'Terminating').toBe(true);
    }),
  );

  it(
    'stages two DataLake files with progress rising on the subscription, then the step is AVAILABLE',
    guard(async () => {
      const request = requestFor([
        'testing:zrq-test-example-011-25MiB',
        'testing:zrq-test-example-011-5GiB-remote',
      ]);
      const id = await direct(request, 'dana');
      const watch = subscribe(stack.ws('dev:dana'), WATCH, { id });
      await watch.until(
        (events) => stepOf(events).some((step) => ['AVAILABLE', 'RUNNING', 'FAILED'].includes(step.phase)),
        'AVAILABLE',
        90_000,
      );
      const steps = stepOf(watch.events);
      expect(steps.map((step) => step.phase)).not.toContain('FAILED');
      const remote = steps
        .map((step) =>
          step.dataStaging.find((job: { source: string }) => job.source?.includes('5GiB-remote')),
        )
        .filter(Boolean);
      const done = remote.map((job: { bytesDone: number }) => job.bytesDone);
      // Progress rose through values between nothing and everything, never backwards.
      expect(done.filter((bytes: number) => bytes > 0 && bytes < 5 * 1024 ** 3).length).toBeGreaterThan(0);
      expect(done).toEqual([...done].sort((a, b) => a - b));
      const available = steps.find((step) => step.phase === 'AVAILABLE');
      expect(available.dataStaging.map((job: { state: string }) => job.state)).toEqual([
        'COMPLETED',
        'COMPLETED',
      ]);
    }),
  );

  it(
    'fails a step whose DID does not exist, naming it',
    guard(async () => {
      const id = await direct(requestFor(['testing:no-such-file']), 'mia');
      const watch = subscribe(stack.ws('dev:mia'), WATCH, { id });
      await watch.until((events) => stepOf(events).some((step) => step.phase === 'FAILED'), 'FAILED', 60_000);
      const last = stepOf(watch.events).at(-1);
      expect(last.meta.messages.map((m: { message: string }) => m.message).join(' ')).toContain(
        'testing:no-such-file',
      );
    }),
  );

  it(
    'releases the staging of a step cancelled mid-transfer, and its files go',
    guard(async () => {
      const id = await direct(requestFor(['testing:zrq-test-example-011-25GiB']), 'cass');
      const watch = subscribe(stack.ws('dev:cass'), WATCH, { id });
      await watch.until(
        (events) => stepOf(events).some((step) => step.dataStaging?.[0]?.bytesDone > 0),
        'transfer under way',
        60_000,
      );
      await stack.graphql(
        'mutation C($id: ID!) { cancelExecutionStep(id: $id) { phase } }',
        { id },
        'dev:cass',
      );
      await watch.until(
        (events) =>
          stepOf(events).some((step) =>
            ['RELEASED', 'FAILED', 'EXPIRED'].includes(step.dataStaging?.[0]?.state),
          ),
        'staging released',
        30_000,
      );
      expect(stepOf(watch.events).at(-1).dataStaging[0].state).toBe('RELEASED');
      expect(files(dataRoot).filter((path) => path.includes('25GiB'))).toEqual([]);
    }),
  );
});
