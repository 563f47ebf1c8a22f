import { sql, type Kysely, type Selectable } from 'kysely';
import type { Booking } from '../offers/booking.ts';
import { CAPACITY_PHASES, type StepPhase } from '../lifecycle/transitions.ts';
import type { HistoryRecord, OfferSetRecord, StepRecord } from './model.ts';
import type { Observation } from '../estimates/index.ts';
import { prepared } from '../store/prepared.ts';
import type { BrokerTables, PreparationObservationsTable, StepsTable } from './tables.ts';

/** Reads and writes of steps, offer sets and history; one code path for SQLite and PostgreSQL. */

export type Db = Kysely<BrokerTables>;

export class StaleWriteError extends Error {
  constructor(id: string) {
    super(`step ${id} was changed by another writer; retry`);
    this.name = 'StaleWriteError';
  }
}

const toRecord = (row: Selectable<StepsTable>): StepRecord => ({
  id: row.id,
  offerSetId: row.offer_set_id,
  owner: row.owner,
  phase: row.phase as StepPhase,
  executableKind: row.executable_kind,
  created: Number(row.created),
  modified: Number(row.modified),
  expires: row.expires === null ? null : Number(row.expires),
  availableStart: Number(row.available_start),
  availableEnd: Number(row.available_end),
  cores: row.cores,
  memoryGiB: row.memory_gib,
  storageGiB: row.storage_gib,
  document: JSON.parse(row.document),
  estimates: row.estimates === null ? null : JSON.parse(row.estimates),
  version: row.version,
});

const toRow = (record: StepRecord): StepsTable => ({
  id: record.id,
  offer_set_id: record.offerSetId,
  owner: record.owner,
  phase: record.phase,
  executable_kind: record.executableKind,
  created: record.created,
  modified: record.modified,
  expires: record.expires,
  available_start: record.availableStart,
  available_end: record.availableEnd,
  cores: record.cores,
  memory_gib: record.memoryGiB,
  storage_gib: record.storageGiB,
  document: JSON.stringify(record.document),
  estimates: record.estimates && JSON.stringify(record.estimates),
  version: record.version,
});

export async function insertOfferSet(db: Db, record: OfferSetRecord): Promise<void> {
  await db
    .insertInto('offer_sets')
    .values({
      id: record.id,
      owner: record.owner,
      result: record.result,
      created: record.created,
      expires: record.expires,
      document: JSON.stringify(record.document),
    })
    .execute();
}

const toOfferSet = (row: Selectable<BrokerTables['offer_sets']>): OfferSetRecord => ({
  ...row,
  result: row.result as 'YES' | 'NO',
  created: Number(row.created),
  expires: Number(row.expires),
  document: JSON.parse(row.document),
});

export async function getOfferSet(db: Db, id: string): Promise<OfferSetRecord | undefined> {
  const row = await db.selectFrom('offer_sets').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toOfferSet(row);
}

export async function getOfferSets(db: Db, ids: readonly string[]): Promise<OfferSetRecord[]> {
  if (ids.length === 0) return [];
  return (
    await db
      .selectFrom('offer_sets')
      .selectAll()
      .where('id', 'in', [...ids])
      .execute()
  ).map(toOfferSet);
}

/** Writes a new step as its first events left it (as updateStep would, from version 0). */
export async function insertStep(db: Db, record: StepRecord): Promise<StepRecord> {
  const next = { ...record, version: record.version + 1 };
  await db.insertInto('steps').values(toRow(next)).execute();
  return next;
}

export async function getSteps(db: Db, ids: readonly string[]): Promise<StepRecord[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('steps')
    .selectAll()
    .where('id', 'in', [...ids])
    .execute();
  return rows.map(toRecord);
}

const selectStep = prepared((db: Db, v: { id: string }) =>
  db.selectFrom('steps').selectAll().where('id', '=', v.id),
);
const selectStepForUpdate = prepared((db: Db, v: { id: string }) =>
  db.selectFrom('steps').selectAll().where('id', '=', v.id).forUpdate(),
);

export async function getStep(db: Db, id: string): Promise<StepRecord | undefined> {
  const [row] = (await selectStep(db, { id })).rows;
  return row && toRecord(row);
}

/** The step, locked for the rest of the transaction on PostgreSQL (SQLite's writer lock covers it). */
export async function getStepForUpdate(
  db: Db,
  id: string,
  dialect: 'sqlite' | 'postgres',
): Promise<StepRecord | undefined> {
  const [row] = (await (dialect === 'postgres' ? selectStepForUpdate : selectStep)(db, { id })).rows;
  return row && toRecord(row);
}

export async function stepsOfOfferSet(db: Db, offerSetId: string): Promise<StepRecord[]> {
  const rows = await db
    .selectFrom('steps')
    .selectAll()
    .where('offer_set_id', '=', offerSetId)
    .orderBy('available_start')
    .orderBy('id')
    .execute();
  return rows.map(toRecord);
}

const writeStep = prepared(
  (
    db: Db,
    v: { id: string; phase: string; modified: number; document: string; version: number; read: number },
  ) =>
    db
      .updateTable('steps')
      .set({ phase: v.phase, modified: v.modified, document: v.document, version: v.version })
      .where('id', '=', v.id)
      .where('version', '=', v.read),
);

/**
 * Writes a changed step; fails if someone else wrote it since it was read. Only what events change
 * is written, so that the indexes on the fixed columns are left alone.
 */
export async function updateStep(db: Db, record: StepRecord): Promise<StepRecord> {
  const next = { ...record, version: record.version + 1 };
  const result = await writeStep(db, {
    id: record.id,
    phase: next.phase,
    modified: next.modified,
    document: JSON.stringify(next.document),
    version: next.version,
    read: record.version,
  });
  if (Number(result.numAffectedRows) !== 1) throw new StaleWriteError(record.id);
  return next;
}

const insertHistory = prepared(
  (db: Db, v: { stepId: string; seq: number; at: number; from: string | null; to: string; cause: string }) =>
    db.insertInto('step_history').values({
      step_id: v.stepId,
      seq: v.seq,
      at: v.at,
      from_phase: v.from,
      to_phase: v.to,
      cause: v.cause,
    }),
);

export async function appendHistory(db: Db, entries: (HistoryRecord & { seq: number })[]): Promise<void> {
  for (const entry of entries) await insertHistory(db, entry);
}

export async function historyOf(db: Db, stepIds: readonly string[]): Promise<Map<string, HistoryRecord[]>> {
  const byStep = new Map<string, HistoryRecord[]>(stepIds.map((id) => [id, []]));
  if (stepIds.length === 0) return byStep;
  const rows = await db
    .selectFrom('step_history')
    .selectAll()
    .where('step_id', 'in', [...stepIds])
    .orderBy('step_id')
    .orderBy('seq')
    .execute();
  for (const row of rows) {
    byStep.get(row.step_id)?.push({
      stepId: row.step_id,
      at: Number(row.at),
      from: row.from_phase as StepPhase | null,
      to: row.to_phase as StepPhase,
      cause: row.cause,
    });
  }
  return byStep;
}

// Steps offered or accepted together share a window; summing per window keeps the rows few
// however many steps are active.
const bookedWindows = prepared((db: Db, v: { now: number; horizon: number }) =>
  db
    .selectFrom('steps')
    .select((eb) => [
      'available_start',
      'available_end',
      eb.fn.sum<number>('cores').as('cores'),
      eb.fn.sum<number>('memory_gib').as('memory_gib'),
      eb.fn.sum<number>('storage_gib').as('storage_gib'),
    ])
    .where('phase', 'in', [...CAPACITY_PHASES])
    .where('available_end', '>', v.now)
    .where('available_start', '<', v.horizon)
    // An offer whose expiry timer has not run yet holds nothing.
    .where((eb) =>
      eb.or([eb('phase', '!=', 'OFFERED'), eb('expires', 'is', null), eb('expires', '>', v.now)]),
    )
    .groupBy(['available_start', 'available_end']),
);

/** What every step that holds capacity has booked between now and the horizon. */
export async function bookings(db: Db, now: number, horizon: number): Promise<Booking[]> {
  const { rows } = await bookedWindows(db, { now, horizon });
  return rows.map((row) => ({
    start: Number(row.available_start),
    end: Number(row.available_end),
    cores: Number(row.cores),
    memoryGiB: Number(row.memory_gib),
    storageGiB: Number(row.storage_gib),
  }));
}

/** Serialises offer making across broker instances, so that two offers never book the same capacity. */
export async function lockBookings(db: Db, dialect: 'sqlite' | 'postgres'): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(4001)`.execute(db);
}

export interface StepQuery {
  owner?: string;
  phases?: readonly string[];
  createdAfter?: number;
  createdBefore?: number;
  modifiedAfter?: number;
  executableKinds?: readonly string[];
  first: number;
  /** The last (created, id) already seen. */
  after?: { created: number; id: string };
}

/** Newest first, keyset-paginated by (created, id). Returns one more row than asked, to tell if there is a next page. */
export async function listSteps(db: Db, q: StepQuery): Promise<StepRecord[]> {
  let query = db.selectFrom('steps').selectAll();
  if (q.owner !== undefined) query = query.where('owner', '=', q.owner);
  if (q.phases?.length) query = query.where('phase', 'in', [...q.phases]);
  if (q.createdAfter !== undefined) query = query.where('created', '>=', q.createdAfter);
  if (q.createdBefore !== undefined) query = query.where('created', '<', q.createdBefore);
  if (q.modifiedAfter !== undefined) query = query.where('modified', '>=', q.modifiedAfter);
  if (q.executableKinds?.length) query = query.where('executable_kind', 'in', [...q.executableKinds]);
  if (q.after) {
    const { created, id } = q.after;
    query = query.where((eb) =>
      eb.or([eb('created', '<', created), eb.and([eb('created', '=', created), eb('id', '<', id)])]),
    );
  }
  const rows = await query
    .orderBy('created', 'desc')
    .orderBy('id', 'desc')
    .limit(q.first + 1)
    .execute();
  return rows.map(toRecord);
}

// One statement: the row is written only when the sequence is new, and the count says which.
const writeCallbackSequence = prepared(
  (db: Db, v: { componentUuid: string; stepId: string; sequence: number; now: number }) =>
    db
      .insertInto('component_callbacks')
      .values({ component_uuid: v.componentUuid, step_id: v.stepId, sequence: v.sequence, applied_at: v.now })
      .onConflict((conflict) =>
        conflict
          .column('component_uuid')
          .doUpdateSet({ sequence: v.sequence, applied_at: v.now })
          .where('component_callbacks.sequence', '<', v.sequence),
      ),
);

/** Records a callback's sequence number; false when one as new or newer was applied already. */
export async function claimCallbackSequence(
  db: Db,
  stepId: string,
  componentUuid: string,
  sequence: number,
  now: number,
): Promise<boolean> {
  const result = await writeCallbackSequence(db, { componentUuid, stepId, sequence, now });
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** Steps in these phases (the unfinished ones reconciliation looks at); bounded by the site's capacity. */
export async function stepsInPhases(db: Db, phases: readonly StepPhase[]): Promise<StepRecord[]> {
  const rows = await db
    .selectFrom('steps')
    .selectAll()
    .where('phase', 'in', [...phases])
    .execute();
  return rows.map(toRecord);
}

/** When the last callback of each of these components was applied; components without one are absent. */
export async function callbackTimes(
  db: Db,
  components: readonly string[],
): Promise<Map<string, number | null>> {
  const times = new Map<string, number | null>();
  for (let i = 0; i < components.length; i += 1000) {
    const rows = await db
      .selectFrom('component_callbacks')
      .select(['component_uuid', 'applied_at'])
      .where('component_uuid', 'in', components.slice(i, i + 1000))
      .execute();
    for (const row of rows)
      times.set(row.component_uuid, row.applied_at === null ? null : Number(row.applied_at));
  }
  return times;
}

/** Steps preparing now: the broker's measure of the site's load when an action would start. */
export async function countPreparing(db: Db): Promise<number> {
  const row = await db
    .selectFrom('steps')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('phase', '=', 'PREPARING')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export interface ObservationRecord {
  eventId: string;
  stepId: string;
  componentUuid: string;
  role: string;
  kind: string;
  observation: Observation;
  recordedAt: number;
}

export async function insertObservation(db: Db, record: ObservationRecord): Promise<void> {
  const { observation } = record;
  await db
    .insertInto('preparation_observations')
    .values({
      event_id: record.eventId,
      step_id: record.stepId,
      component_uuid: record.componentUuid,
      role: record.role,
      kind: record.kind,
      action: observation.action,
      params: JSON.stringify(observation.params),
      started_at: Date.parse(observation.startedAt),
      duration_seconds: observation.durationSeconds,
      outcome: observation.outcome,
      recorded_at: record.recordedAt,
    })
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
}

/** Every stored observation in the order the broker learned of them, a page at a time. */
export async function* observations(db: Db, pageSize = 5000): AsyncGenerator<ObservationRecord> {
  let after: { recordedAt: number; eventId: string } | undefined;
  for (;;) {
    let query = db.selectFrom('preparation_observations').selectAll();
    if (after) {
      const { recordedAt, eventId } = after;
      query = query.where((eb) =>
        eb.or([
          eb('recorded_at', '>', recordedAt),
          eb.and([eb('recorded_at', '=', recordedAt), eb('event_id', '>', eventId)]),
        ]),
      );
    }
    const rows = await query.orderBy('recorded_at').orderBy('event_id').limit(pageSize).execute();
    for (const row of rows) yield toObservationRecord(row);
    if (rows.length < pageSize) return;
    const last = rows.at(-1)!;
    after = { recordedAt: Number(last.recorded_at), eventId: last.event_id };
  }
}

function toObservationRecord(row: Selectable<PreparationObservationsTable>): ObservationRecord {
  return {
    eventId: row.event_id,
    stepId: row.step_id,
    componentUuid: row.component_uuid,
    role: row.role,
    kind: row.kind,
    observation: {
      action: row.action,
      params: JSON.parse(row.params),
      startedAt: new Date(Number(row.started_at)).toISOString(),
      durationSeconds: Number(row.duration_seconds),
      outcome: row.outcome,
    } as Observation,
    recordedAt: Number(row.recorded_at),
  };
}
