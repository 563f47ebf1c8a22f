/**
 * Small stand-ins for the subgraphs, for the gateway's own tests and benchmarks: a "broker" that
 * owns ExecutionStep (phase, owner, history, executionStepChanged with the current state first,
 * owner isolation, identity checks as the real broker does them) and a "skaha" worker that adds
 * ExecutionStep.skahaSession { status } and counts how often it is asked.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import {
  DEV_SECRET,
  AuthenticationError,
  identityOf,
  isAdmin,
  STEP_CHANGED,
  type AuthMode,
  type Identity,
  type StepChange,
  type StepPubSub,
} from '@srcnet/service-kit';

export const BROKER_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  scalar DateTime
  enum ExecutionStepPhase {
    INITIAL
    OFFERED
    ACCEPTED
    REJECTED
    EXPIRED
    WAITING
    PREPARING
    AVAILABLE
    RUNNING
    RELEASING
    COMPLETED
    FAILED
    CANCELLED
  }
  type ComponentMetadata {
    uuid: ID!
    owner: String!
    modified: String!
  }
  type PhaseChange {
    from: ExecutionStepPhase
    to: ExecutionStepPhase!
    at: String!
    cause: String
  }
  type ExecutionStep @key(fields: "id") {
    id: ID!
    kind: String!
    phase: ExecutionStepPhase!
    meta: ComponentMetadata!
    history: [PhaseChange!]!
  }
  type ExecutionStepEdge {
    cursor: String!
    node: ExecutionStep!
  }
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }
  type ExecutionStepConnection {
    edges: [ExecutionStepEdge!]!
    pageInfo: PageInfo!
  }
  input ExecutionStepFilter {
    phase: [ExecutionStepPhase!]
    modifiedAfter: DateTime
  }
  type Query {
    executionStep(id: ID!): ExecutionStep
    executionSteps(filter: ExecutionStepFilter, first: Int = 20, after: String): ExecutionStepConnection!
  }
  type Mutation {
    cancelExecutionStep(id: ID!): ExecutionStep!
  }
  type Subscription {
    executionStepChanged(id: ID): ExecutionStep!
  }
`;

export const SKAHA_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type SkahaSession {
    status: String!
  }
  type ExecutionStep @key(fields: "id") {
    id: ID!
    skahaSession: SkahaSession
  }
`;

interface Step {
  id: string;
  kind: string;
  phase: string;
  meta: { uuid: string; owner: string; modified: string };
  history: { from: string | null; to: string; at: string; cause: string }[];
}

export interface StandInOptions {
  mode?: AuthMode;
  gatewaySecret?: string;
  admins?: string[];
  pubsub: StepPubSub;
}

async function listen(server: Server) {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

function caller(
  headers: Record<string, string | string[] | undefined>,
  options: Omit<StandInOptions, 'pubsub'>,
): Identity {
  try {
    return identityOf(headers, {
      mode: options.mode ?? 'dev',
      gatewaySecret: options.gatewaySecret ?? DEV_SECRET,
      admins: options.admins ?? ['admin'],
    });
  } catch (error) {
    if (error instanceof AuthenticationError)
      throw new GraphQLError(error.message, {
        extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
      });
    throw error;
  }
}

type Context = { identity: Identity };

/** The broker stand-in; `create` and `move` commit changes and publish them as the broker does. */
export async function startStandInBroker(options: StandInOptions) {
  const steps = new Map<string, Step>();
  const canSee = (identity: Identity, step: Step | undefined) =>
    !!step && (isAdmin(identity) || step.meta.owner === identity.user);
  /** While set, changes are committed but their notices lost, as when Redis is down. */
  let losingNotices = false;
  /**
   * While set, reads made for users fail and the gateway's own (admin) reads succeed: the fan-out
   * learns of a change, then cannot fetch it for its subscribers.
   */
  let failingUserReads = false;
  const available = (identity: Identity) => {
    if (failingUserReads && !isAdmin(identity)) throw new GraphQLError('the broker is restarting');
  };
  const publish = async (step: Step) =>
    losingNotices ||
    options.pubsub.publish(STEP_CHANGED, {
      id: step.id,
      owner: step.meta.owner,
      phase: step.phase,
      at: Date.parse(step.meta.modified),
    });

  async function* changes(identity: Identity, id: string | undefined) {
    const events = options.pubsub.subscribe(STEP_CHANGED) as AsyncIterable<StepChange>;
    if (id) {
      const step = steps.get(id);
      if (!canSee(identity, step))
        throw new GraphQLError(`no step ${id}`, { extensions: { code: 'NOT_FOUND' } });
      yield { ...step! };
    } else {
      for (const step of steps.values()) if (canSee(identity, step)) yield { ...step };
    }
    for await (const change of events) {
      const step = steps.get(change.id);
      if ((id ? change.id === id : true) && canSee(identity, step)) yield { ...step! };
    }
  }

  const schema = buildSubgraphSchema({
    typeDefs: parse(BROKER_SDL),
    resolvers: {
      Query: {
        executionStep: (_: unknown, { id }: { id: string }, { identity }: Context) => {
          available(identity);
          return canSee(identity, steps.get(id)) ? steps.get(id) : null;
        },
        executionSteps: (
          _: unknown,
          args: { filter?: { phase?: string[]; modifiedAfter?: string }; first: number },
          { identity }: Context,
        ) => {
          available(identity);
          const since = args.filter?.modifiedAfter;
          const nodes = [...steps.values()]
            .filter((step) => canSee(identity, step))
            .filter((step) => !args.filter?.phase || args.filter.phase.includes(step.phase))
            .filter((step) => !since || Date.parse(step.meta.modified) >= Date.parse(since))
            .slice(0, args.first);
          return {
            edges: nodes.map((node) => ({ cursor: node.id, node })),
            pageInfo: { hasNextPage: false, endCursor: nodes.at(-1)?.id ?? null },
          };
        },
      },
      Mutation: {
        cancelExecutionStep: (_: unknown, { id }: { id: string }, { identity }: Context) => {
          if (!canSee(identity, steps.get(id)))
            throw new GraphQLError(`no step ${id}`, { extensions: { code: 'NOT_FOUND' } });
          return move(id, 'CANCELLED');
        },
      },
      Subscription: {
        executionStepChanged: {
          subscribe: (_: unknown, { id }: { id?: string | null }, { identity }: Context) =>
            changes(identity, id ?? undefined),
          resolve: (step: Step) => step,
        },
      },
      ExecutionStep: {
        __resolveReference: (reference: { id: string }, { identity }: Context) =>
          canSee(identity, steps.get(reference.id)) ? steps.get(reference.id) : null,
      },
    } as never,
  });
  const yoga = createYoga<{ req: { headers: Record<string, string> } }, Context>({
    schema,
    logging: false,
    context: ({ req }) => ({ identity: caller(req.headers, options) }),
  });
  const server = createServer(yoga);
  const url = await listen(server);

  function move(id: string, phase: string, cause = 'test'): Step {
    const step = steps.get(id);
    if (!step) throw new Error(`no step ${id}`);
    const at = new Date().toISOString();
    step.history.push({ from: step.phase, to: phase, at, cause });
    step.phase = phase;
    step.meta.modified = at;
    void publish(step);
    return step;
  }

  return {
    url,
    steps,
    /** A new step of `owner` in phase OFFERED (published, like every change). */
    create(owner: string): Step {
      const id = randomUUID();
      const at = new Date().toISOString();
      const step: Step = {
        id,
        kind: 'test',
        phase: 'OFFERED',
        meta: { uuid: id, owner, modified: at },
        history: [{ from: 'INITIAL', to: 'OFFERED', at, cause: 'test' }],
      };
      steps.set(id, step);
      void publish(step);
      return step;
    },
    move,
    loseNotices(lose: boolean) {
      losingNotices = lose;
    },
    failUserReads(fail: boolean) {
      failingUserReads = fail;
    },
    /** A change that leaves the phase as it is (a component's progress, say), modified at `at`. */
    touch(id: string, at = new Date().toISOString()): Step {
      const step = steps.get(id)!;
      step.meta.modified = at;
      void publish(step);
      return step;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

/** The worker stand-in: skahaSession.status per step, settable; counts entity fetches. */
export async function startStandInWorker(options: Omit<StandInOptions, 'pubsub'>) {
  const status = new Map<string, string>();
  const stats = { requests: 0, entities: 0, unsigned: 0, lastIdentity: undefined as Identity | undefined };
  const schema = buildSubgraphSchema({
    typeDefs: parse(SKAHA_SDL),
    resolvers: {
      ExecutionStep: {
        __resolveReference: (reference: { id: string }) => {
          stats.entities += 1;
          return { id: reference.id };
        },
        skahaSession: (step: { id: string }) => ({ status: status.get(step.id) ?? 'Pending' }),
      },
    } as never,
  });
  const yoga = createYoga<{ req: { headers: Record<string, string> } }, Context>({
    schema,
    logging: false,
    context: ({ req }) => {
      stats.requests += 1;
      if (!req.headers['x-srcnet-identity']) stats.unsigned += 1;
      stats.lastIdentity = caller(req.headers, options);
      return { identity: stats.lastIdentity };
    },
  });
  const server = createServer(yoga);
  const url = await listen(server);
  return {
    url,
    status,
    stats,
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}
