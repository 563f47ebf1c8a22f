import { GraphQLError } from 'graphql';
import { GraphQLDateTime, GraphQLJSONObject, GraphQLLong } from 'graphql-scalars';
import {
  canonicalKind,
  fromGraphQL,
  schemaNameForKind,
  stepToGraphQL,
  offerSetToGraphQL,
} from '@srcnet/execution-step-schema';
import { STEP_CHANGED, type StepChange, type StepPubSub } from '@srcnet/service-kit';
import type { Resolvers, ResolversTypes } from '../generated/resolvers.ts';
import { TERMINAL_PHASES, type StepEvent } from '../lifecycle/transitions.ts';
import { offerSetDocument, stepDocument } from '../steps/documents.ts';
import { ClientError, checkNesting } from '../steps/errors.ts';
import type { OfferSetRecord, StepRecord } from '../steps/model.ts';
import type { BrokerContext } from './context.ts';
import { withClientErrors } from './scalars.ts';

/**
 * The broker subgraph. Steps and offer sets are stored as IVOA documents and served in their
 * GraphQL shape through the shared converter; `history` and `offerSet` are loaded in batches.
 */

type StepShape = ResolversTypes['ExecutionStep'];

export function toGraphQLError(error: unknown): never {
  if (error instanceof ClientError) {
    throw new GraphQLError(error.message, {
      extensions: {
        code: error.code,
        http: { status: error.status },
        issues: error.issues.length ? error.issues : undefined,
      },
    });
  }
  throw error;
}

const asStep = (record: StepRecord, ctx: BrokerContext): StepShape => {
  const { history: _history, ...shape } = stepToGraphQL(stepDocument(record, ctx.baseUrl));
  return { ...shape, __offerSetId: record.offerSetId } as unknown as StepShape;
};

const asOfferSet = (record: OfferSetRecord, offers: StepRecord[], ctx: BrokerContext) =>
  offerSetToGraphQL(offerSetDocument(record, offers, ctx.baseUrl) as never);

const byKind = (value: { kind?: string; __typename?: string }) =>
  value.__typename ?? schemaNameForKind(value.kind ?? '') ?? null;

const CURSOR = /^(\d+):([0-9a-f-]{36})$/;
const encodeCursor = (record: StepRecord) =>
  Buffer.from(`${record.created}:${record.id}`).toString('base64url');
function decodeCursor(cursor: string): { created: number; id: string } {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match)
    throw new GraphQLError(`after: ${JSON.stringify(cursor)} is not a cursor this API gave out`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  return { created: Number(match[1]), id: match[2]! };
}

async function mutate(ctx: BrokerContext, id: string, event: StepEvent) {
  try {
    return asStep(await ctx.broker.clientEvent(ctx.identity, id, event), ctx);
  } catch (error) {
    return toGraphQLError(error);
  }
}

export function resolvers(pubsub: StepPubSub): Resolvers<BrokerContext> {
  return {
    DateTime: withClientErrors(GraphQLDateTime),
    Long: withClientErrors(GraphQLLong),
    JSONObject: withClientErrors(GraphQLJSONObject),
    Executable: { __resolveType: byKind as never },
    ComputeResource: { __resolveType: byKind as never },
    StorageResource: { __resolveType: byKind as never },
    DataResource: { __resolveType: byKind as never },
    VolumeMount: { __resolveType: byKind as never },
    CostItem: { __resolveType: byKind as never },
    MetricItem: { __resolveType: byKind as never },
    Option: {
      __resolveType: ((option: { kind: string }) =>
        ({
          'uri:string-value-option': 'StringValueOption',
          'uri:enum-value-option': 'EnumValueOption',
          'uri:integer-value-option': 'IntegerValueOption',
          'uri:integer-delta-option': 'IntegerDeltaOption',
        })[option.kind] ?? null) as never,
    },
    Query: {
      executionStep: async (_, { id }, ctx) => {
        const record = await ctx.steps.load(id);
        return record && ctx.broker.canSee(ctx.identity, record) ? asStep(record, ctx) : null;
      },
      executionSteps: async (_, { filter, first, after }, ctx) => {
        const limit = Math.min(Math.max(first ?? 20, 1), 200);
        const kinds = filter?.kind ? [canonicalKind(filter.kind) ?? filter.kind] : undefined;
        const rows = await ctx.broker.listSteps(ctx.identity, {
          phases: filter?.phase ?? undefined,
          createdAfter: filter?.createdAfter ? Date.parse(filter.createdAfter) : undefined,
          createdBefore: filter?.createdBefore ? Date.parse(filter.createdBefore) : undefined,
          modifiedAfter: filter?.modifiedAfter ? Date.parse(filter.modifiedAfter) : undefined,
          executableKinds: kinds,
          first: limit,
          after: after ? decodeCursor(after) : undefined,
        });
        const page = rows.slice(0, limit);
        for (const row of page) ctx.steps.prime(row.id, row);
        return {
          edges: page.map((row) => ({ cursor: encodeCursor(row), node: asStep(row, ctx) })),
          pageInfo: {
            hasNextPage: rows.length > limit,
            endCursor: page.length ? encodeCursor(page.at(-1)!) : null,
          },
        } as never;
      },
      offerSet: async (_, { id }, ctx) => {
        const found = await ctx.broker.getOfferSet(ctx.identity, id);
        return found ? (asOfferSet(found.offerSet, found.offers, ctx) as never) : null;
      },
    },
    Mutation: {
      requestOffers: async (_, { request }, ctx) => {
        try {
          checkNesting(request);
          const { offerSet, offers } = await ctx.broker.requestOffers(ctx.identity, fromGraphQL(request));
          return asOfferSet(offerSet, offers, ctx) as never;
        } catch (error) {
          return toGraphQLError(error);
        }
      },
      executeDirect: async (_, { request }, ctx) => {
        try {
          checkNesting(request);
          const { offerSet, step } = await ctx.broker.executeDirect(ctx.identity, fromGraphQL(request));
          if (!step) {
            const reasons = (offerSet.document.meta?.messages ?? []).map((m) => m.message).join('; ');
            throw new GraphQLError(`no step could be made: ${reasons}`, {
              extensions: { code: 'NO_OFFER', messages: offerSet.document.meta?.messages },
            });
          }
          return asStep(step, ctx) as never;
        } catch (error) {
          return toGraphQLError(error);
        }
      },
      acceptOffer: (_, { id }, ctx) => mutate(ctx, id, 'accept') as never,
      rejectOffer: (_, { id }, ctx) => mutate(ctx, id, 'reject') as never,
      cancelExecutionStep: (_, { id }, ctx) => mutate(ctx, id, 'cancel') as never,
    },
    Subscription: {
      executionStepChanged: {
        subscribe: (_, { id }, ctx) => stepChanges(pubsub, ctx, id ?? undefined) as never,
        resolve: (step: StepShape) => step as never,
      },
    },
    ExecutionStep: {
      __resolveReference: async (reference, ctx) => {
        const record = await ctx.steps.load(reference.id);
        return (record && ctx.broker.canSee(ctx.identity, record) ? asStep(record, ctx) : null) as never;
      },
      history: async (step, _, ctx) =>
        (await ctx.history.load(step.id)).map((entry) => ({
          from: entry.from,
          to: entry.to,
          at: new Date(entry.at).toISOString(),
          cause: entry.cause,
        })),
      offerSet: async (step, _, ctx) => {
        const offerSetId = (step as { __offerSetId?: string | null }).__offerSetId;
        if (!offerSetId) return null;
        const record = await ctx.offerSets.load(offerSetId);
        if (!record || !ctx.broker.canSee(ctx.identity, record)) return null;
        return {
          ...offerSetToGraphQL({
            ...record.document,
            meta: { ...record.document.meta, uuid: record.id },
          } as never),
          offers: [],
        } as never;
      },
    },
    OfferSet: {
      __resolveReference: async (reference, ctx) => {
        const found = await ctx.broker.getOfferSet(ctx.identity, reference.id);
        return (found ? asOfferSet(found.offerSet, found.offers, ctx) : null) as never;
      },
    },
  };
}

/**
 * The changes a subscriber asked for: first the current state (so that a client that reconnects
 * misses nothing), then each committed change, loaded fresh for this caller.
 */
async function* stepChanges(
  pubsub: StepPubSub,
  ctx: BrokerContext,
  id: string | undefined,
): AsyncGenerator<StepShape> {
  const events = pubsub.subscribe(STEP_CHANGED) as AsyncIterable<StepChange>;
  const mine = (change: StepChange) =>
    id ? change.id === id : change.owner === ctx.identity.user || ctx.identity.roles.includes('admin');
  if (id) {
    const current = await ctx.broker.getStep(ctx.identity, id);
    if (!current) throw new GraphQLError(`no step ${id}`, { extensions: { code: 'NOT_FOUND' } });
    yield asStep(current, ctx);
  } else {
    const active = await ctx.broker.listSteps(ctx.identity, { first: 200, phases: ACTIVE_PHASES });
    for (const step of active.slice(0, 200)) yield asStep(step, ctx);
  }
  for await (const change of events) {
    if (!mine(change)) continue;
    const record = await ctx.broker.getStep(ctx.identity, change.id);
    if (record) yield asStep(record, ctx);
  }
}

const ACTIVE_PHASES = [
  'OFFERED',
  'ACCEPTED',
  'WAITING',
  'PREPARING',
  'AVAILABLE',
  'RUNNING',
  'RELEASING',
].filter((phase) => !TERMINAL_PHASES.has(phase as never));
