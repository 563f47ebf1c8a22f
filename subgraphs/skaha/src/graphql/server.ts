/**
 * The Skaha subgraph at /graphql: `ExecutionStep.skahaSession`, `Query.skahaSessions`,
 * `Query.skahaContext` and `Mutation.renewSkahaSession`. A caller sees the sessions the broker
 * launched for their steps and the Skaha sessions of their own Skaha user; admins see all.
 * Per request, one `GET /session` serves every session lookup (DataLoader).
 */
import { readFileSync } from 'node:fs';
import DataLoader from 'dataloader';
import type { FastifyInstance } from 'fastify';
import { GraphQLError, GraphQLScalarType } from 'graphql';
import type { Logger } from 'pino';
import { isAdmin, serveSubgraph, type Identity, type IdentityOptions } from '@srcnet/service-kit';
import { stepComputeOf } from '../resources/mapping.ts';
import type { ResourceContext, Session, SkahaApi } from '../skaha/index.ts';
import { sessionResources } from '../skaha/index.ts';
import type { SessionTracker } from '../sessions/tracker.ts';
import type { SessionRow } from '../store/store.ts';
import { sessionAsStep, stepIdOfSession } from '../views/as-step.ts';

const SDL = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');

interface Context {
  identity: Identity;
  /** The one listing of this request. */
  listing: DataLoader<'all', Session[]>;
  rowsByStep: DataLoader<string, SessionRow | undefined>;
  rowsBySession: DataLoader<string, SessionRow | undefined>;
}

interface Deps {
  api: SkahaApi;
  tracker: SessionTracker;
  log: Logger;
}

const passThrough = (name: string, description: string) =>
  new GraphQLScalarType({
    name,
    description,
    serialize: (value) => value,
    parseValue: (value) => value,
  });

function sessionView(session: Session, context: ResourceContext, stepId: string | undefined) {
  const resources = sessionResources(session);
  return {
    id: session.id,
    name: session.name,
    status: session.status,
    rawStatus: session.rawStatus,
    type: session.type,
    image: session.image,
    connectURL: session.connectURL || null,
    startTime: session.startTime ?? null,
    expiryTime: session.expiryTime ?? null,
    requestedCores: resources.requestedCPUCores ?? null,
    requestedRAM: resources.requestedRAMGB ?? null,
    requestedGPUs: resources.requestedGPUs ?? null,
    usedCores: resources.cpuCoresInUse ?? null,
    usedRAM: resources.ramInUseGB ?? null,
    usedGPUs: null,
    isFixedResources: resources.fixed,
    compute: stepComputeOf(session, context),
    userid: session.userid,
    stepId: stepId ?? null,
  };
}

/** The live session when Skaha still lists it, else the last one the worker saw. */
function sessionOfRow(row: SessionRow, listing: Session[]): Session | undefined {
  const live = listing.find((session) => session.id === row.session_id);
  if (live) return live;
  return row.snapshot ? (JSON.parse(row.snapshot) as Session) : undefined;
}

export function registerGraphQL(app: FastifyInstance, options: Deps & { identity: IdentityOptions }): void {
  const { api, tracker, log } = options;
  const canSee = (identity: Identity, row: SessionRow | undefined, session: Session) =>
    isAdmin(identity) || (row ? row.owner === identity.user : session.userid === identity.user);

  const resolvers = {
    DateTime: passThrough('DateTime', 'An ISO-8601 date and time.'),
    JSONObject: passThrough('JSONObject', 'A JSON object.'),
    ExecutionStep: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      skahaSession: async (step: { id: string }, _args: unknown, context: Context) => {
        const row = await context.rowsByStep.load(step.id);
        if (!row || row.session_id === null) return null;
        if (row.owner !== context.identity.user && !isAdmin(context.identity)) return null;
        let listing: Session[] = [];
        try {
          listing = await context.listing.load('all');
        } catch (error) {
          log.warn({ err: error }, 'listing Skaha sessions failed; showing the last known state');
        }
        const session = sessionOfRow(row, listing);
        return session ? sessionView(session, await tracker.resourceContext(), row.step_id) : null;
      },
    },
    Query: {
      skahaSessions: async (_root: unknown, _args: unknown, context: Context) => {
        const listing = await context.listing.load('all');
        const rows = await context.rowsBySession.loadMany(listing.map((session) => session.id));
        const resourceContext = await tracker.resourceContext();
        return listing.flatMap((session, index) => {
          const found = rows[index];
          const row = found instanceof Error ? undefined : found;
          if (!canSee(context.identity, row, session)) return [];
          const id = row?.step_id ?? stepIdOfSession(session.id);
          return [
            {
              id,
              session: sessionView(session, resourceContext, row?.step_id),
              executionStep: row ? { __typename: 'ExecutionStep', id: row.step_id } : null,
              asExecutionStep: sessionAsStep(session, id, resourceContext),
            },
          ];
        });
      },
      skahaContext: async () => {
        const context = await tracker.resourceContext();
        const options = (o: ResourceContext['cores']) => ({
          default: o.default,
          defaultRequest: o.defaultRequest,
          defaultLimit: o.defaultLimit,
          options: o.options,
        });
        return {
          cores: options(context.cores),
          memory: options(context.memoryGB),
          gpus: context.gpus.options,
          maxInteractiveSessions: context.maxInteractiveSessions ?? null,
        };
      },
    },
    Mutation: {
      renewSkahaSession: async (_root: unknown, args: { id: string }, context: Context) => {
        const notFound = () =>
          new GraphQLError(`no Skaha session ${args.id} of yours`, { extensions: { code: 'NOT_FOUND' } });
        let session: Session;
        try {
          session = await api.getSession(args.id);
        } catch {
          throw notFound();
        }
        const row = await context.rowsBySession.load(args.id);
        if (!canSee(context.identity, row, session)) throw notFound();
        try {
          await api.renewSession(args.id);
          session = await api.getSession(args.id);
        } catch (error) {
          throw new GraphQLError(`Skaha did not renew session ${args.id}: ${(error as Error).message}`, {
            extensions: { code: 'BAD_REQUEST' },
          });
        }
        return sessionView(session, await tracker.resourceContext(), row?.step_id);
      },
    },
  };

  serveSubgraph<Context>(app, {
    sdl: SDL,
    resolvers,
    identity: options.identity,
    context: () => ({
      listing: new DataLoader(async (keys: readonly 'all'[]) => {
        const sessions = await api.listSessions();
        return keys.map(() => sessions);
      }),
      rowsByStep: new DataLoader(async (ids: readonly string[]) => {
        const rows = await tracker.rowsOfSteps(ids);
        return ids.map((id) => rows.find((row) => row.step_id === id));
      }),
      rowsBySession: new DataLoader(async (ids: readonly string[]) => {
        const rows = await tracker.rowsOfSessions(ids);
        return ids.map((id) => rows.find((row) => row.session_id === id));
      }),
    }),
  });
}
