/**
 * The Harbor subgraph at /graphql: `ExecutionStep.image` (a step's image and its copy; only for
 * the step's owner or an admin) and `Query.containerImage` (any image, for the portal).
 */
import { readFileSync } from 'node:fs';
import DataLoader from 'dataloader';
import type { FastifyInstance } from 'fastify';
import { GraphQLScalarType, Kind } from 'graphql';
import { isAdmin, serveSubgraph, type Identity, type IdentityOptions } from '@srcnet/service-kit';
import type { ImageEstimate, ImageStatusService } from '../images/status.ts';
import type { Db, ImageRow } from '../store/store.ts';

const SDL = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');

interface ContainerImageStatus {
  reference: string;
  digest: string | null;
  sizeBytes: number | null;
  availableLocally: boolean;
  localReference: string | null;
  copyState: string | null;
  bytesDone: number | null;
  estimatedCopySeconds: number | null;
  message: string | null;
}

interface Context {
  identity: Identity;
  imagesByStep: DataLoader<string, ImageRow | undefined>;
  imagesByReference: DataLoader<string, ImageEstimate>;
}

const Long = new GraphQLScalarType<number, number>({
  name: 'Long',
  description: 'A 64-bit integer (sizes in bytes can exceed 32 bits).',
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

function fromRow(row: ImageRow): ContainerImageStatus {
  return {
    reference: row.reference,
    digest: row.digest ?? row.expected_digest,
    sizeBytes: row.size_bytes,
    availableLocally: row.available_locally === 1,
    localReference: row.local_reference,
    copyState: row.copy_state,
    bytesDone: row.bytes_done,
    estimatedCopySeconds: row.estimated_copy_seconds,
    message: row.message,
  };
}

function fromEstimate(estimate: ImageEstimate): ContainerImageStatus {
  return {
    reference: estimate.reference,
    digest: estimate.digest,
    sizeBytes: estimate.sizeBytes,
    availableLocally: estimate.availableLocally,
    localReference: estimate.localReference,
    copyState: null,
    bytesDone: null,
    estimatedCopySeconds: estimate.estimatedCopySeconds,
    message: estimate.problem ?? null,
  };
}

const resolvers = {
  Long,
  ExecutionStep: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
    image: async (step: { id: string }, _args: unknown, context: Context) => {
      const row = await context.imagesByStep.load(step.id);
      if (!row) return null;
      if (row.owner !== context.identity.user && !isAdmin(context.identity)) return null;
      return fromRow(row);
    },
  },
  Query: {
    containerImage: async (
      _root: unknown,
      args: { reference: string; digest?: string | null },
      context: Context,
    ) =>
      fromEstimate(
        await context.imagesByReference.load(JSON.stringify([args.reference, args.digest ?? null])),
      ),
  },
};

export function registerGraphQL(
  app: FastifyInstance,
  options: { db: Db; status: ImageStatusService; identity: IdentityOptions },
): void {
  serveSubgraph<Context>(app, {
    sdl: SDL,
    resolvers,
    identity: options.identity,
    context: () => ({
      imagesByStep: new DataLoader(async (stepIds: readonly string[]) => {
        const rows = await options.db
          .selectFrom('images')
          .selectAll()
          .where('step_id', 'in', [...stepIds])
          .execute();
        const byStep = new Map(rows.map((row) => [row.step_id, row]));
        return stepIds.map((id) => byStep.get(id));
      }),
      imagesByReference: new DataLoader(async (keys: readonly string[]) =>
        Promise.all(
          keys.map((key) => {
            const [reference, digest] = JSON.parse(key) as [string, string | null];
            return options.status.estimate({ locations: [reference], digest: digest ?? undefined });
          }),
        ),
      ),
    }),
  });
}
