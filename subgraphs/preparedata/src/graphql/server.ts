/**
 * The prepareData subgraph at /graphql: `ExecutionStep.dataStaging` (only for the step's owner or
 * an admin) and `Mutation.extendDataLifetime`.
 */
import { readFileSync } from 'node:fs';
import DataLoader from 'dataloader';
import type { FastifyInstance } from 'fastify';
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import { isAdmin, serveSubgraph, type Identity, type IdentityOptions } from '@srcnet/service-kit';
import { secondsLeft, type Stager } from '../staging/stager.ts';
import type { ComponentRow, Db } from '../store/store.ts';

const SDL = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');

interface Context {
  identity: Identity;
  dataByStep: DataLoader<string, ComponentRow[]>;
}

const Long = new GraphQLScalarType<number, number>({
  name: 'Long',
  serialize: (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      throw new TypeError(`Long cannot represent ${String(value)}`);
    return value;
  },
  parseValue: (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      throw new TypeError(`Long must be a safe integer (got ${String(value)})`);
    return value;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT) throw new TypeError('Long must be an integer literal');
    return Number(ast.value);
  },
});

const DateTime = new GraphQLScalarType<string, string>({
  name: 'DateTime',
  serialize: (value) => {
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
      throw new TypeError(`DateTime cannot represent ${String(value)}`);
    return new Date(value).toISOString();
  },
});

const canSee = (identity: Identity, row: { owner: string }) =>
  row.owner === identity.user || isAdmin(identity);

function toJob(row: ComponentRow) {
  const total = row.bytes_total;
  const complete = row.state === 'COMPLETED';
  return {
    resourceUuid: row.component_uuid,
    resourceName: row.name,
    source: row.source,
    sourceKind: row.source_kind === null ? null : row.source_kind.toUpperCase(),
    sourceSite: row.source_site,
    state: row.state,
    jobId: row.job_id,
    storageArea: row.storage_area,
    bytesDone: row.bytes_done,
    bytesTotal: total,
    fraction: total ? Math.min(1, row.bytes_done / total) : complete ? 1 : null,
    rate: row.rate,
    estimatedSecondsLeft: complete
      ? 0
      : row.rate && total !== null && (row.state === 'STAGING' || row.state === 'QUEUED')
        ? secondsLeft(row.bytes_done, total, row.rate)
        : null,
    localPath: row.local_path,
    lifetimeSeconds: row.lifetime_seconds,
    expiresAt: row.expires_at,
    message: row.message,
    updatedAt: row.updated_at,
  };
}

function dataRows(rows: ComponentRow[]) {
  return rows.filter((row) => row.role === 'data').map(toJob);
}

export function registerGraphQL(
  app: FastifyInstance,
  options: { db: Db; extend: Stager['extend']; identity: IdentityOptions },
): void {
  const resolvers = {
    Long,
    DateTime,
    ExecutionStep: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      dataStaging: async (step: { id: string }, _args: unknown, context: Context) => {
        const rows = await context.dataByStep.load(step.id);
        return dataRows(rows.filter((row) => canSee(context.identity, row)));
      },
    },
    Mutation: {
      extendDataLifetime: async (
        _root: unknown,
        args: { stepId: string; seconds: number },
        context: Context,
      ) => {
        if (!Number.isInteger(args.seconds) || args.seconds < 1)
          throw new GraphQLError(`seconds must be a whole number of at least 1 (got ${args.seconds})`, {
            extensions: { code: 'BAD_USER_INPUT' },
          });
        const rows = await context.dataByStep.load(args.stepId);
        if (rows.length === 0 || !rows.every((row) => canSee(context.identity, row)))
          throw new GraphQLError(`step ${args.stepId} has no staged data of yours`, {
            extensions: { code: 'NOT_FOUND' },
          });
        try {
          return dataRows(await options.extend(args.stepId, args.seconds));
        } catch (error) {
          throw new GraphQLError(`could not extend the data lifetime: ${(error as Error).message}`, {
            extensions: { code: 'BACKEND_ERROR' },
          });
        }
      },
    },
  };
  serveSubgraph<Context>(app, {
    sdl: SDL,
    resolvers,
    identity: options.identity,
    context: () => ({
      dataByStep: new DataLoader(async (stepIds: readonly string[]) => {
        const rows = await options.db
          .selectFrom('components')
          .selectAll()
          .where('step_id', 'in', [...stepIds])
          .orderBy('name')
          .execute();
        return stepIds.map((id) => rows.filter((row) => row.step_id === id));
      }),
    }),
  });
}
