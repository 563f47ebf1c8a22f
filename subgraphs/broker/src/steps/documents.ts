import type { Ivoa } from '@srcnet/execution-step-schema';
import { clientOptions } from '../lifecycle/transitions.ts';
import type { OfferSetRecord, StepRecord } from './model.ts';

/**
 * The IVOA documents the broker answers with, made from what it stores: the URLs depend on the
 * address the client used, and `meta.options` on the phase now (the updates the draft standard
 * says a client may make: accept or reject while OFFERED, cancel while active).
 */

const iso = (ms: number) => new Date(ms).toISOString();

const COLLECTIONS: Record<string, string> = {
  executable: 'executables',
  compute: 'compute',
  storage: 'storage',
  data: 'data',
};

function withUrl<T extends { meta?: Ivoa.ComponentMetadata }>(
  component: T | undefined,
  baseUrl: string,
  collection: string,
): T | undefined {
  if (!component?.meta?.uuid) return component;
  return {
    ...component,
    meta: { ...component.meta, url: `${baseUrl}/${collection}/${component.meta.uuid}` },
  };
}

export function stepDocument(record: StepRecord, baseUrl: string): Ivoa.ScheduledExecutionSession {
  const doc = record.document;
  const values = clientOptions(record.phase);
  const compute = withUrl(doc.compute, baseUrl, COLLECTIONS.compute!);
  return {
    ...doc,
    meta: {
      ...doc.meta,
      uuid: record.id,
      owner: record.owner,
      url: `${baseUrl}/sessions/${record.id}`,
      created: iso(record.created),
      modified: iso(record.modified),
      options: values.length ? [{ kind: 'uri:enum-value-option', path: 'phase', values }] : undefined,
    },
    phase: record.phase,
    expires: record.phase === 'OFFERED' && record.expires ? iso(record.expires) : doc.expires,
    executable: withUrl(doc.executable, baseUrl, COLLECTIONS.executable!),
    compute: compute && {
      ...compute,
      volumes: (compute as Ivoa.SimpleComputeResource).volumes?.map((volume) =>
        withUrl(volume, baseUrl, 'volumes')!,
      ),
    },
    storage: doc.storage?.map((s) => withUrl(s, baseUrl, COLLECTIONS.storage!)!),
    data: doc.data?.map((d) => withUrl(d, baseUrl, COLLECTIONS.data!)!),
    estimates: record.estimates ?? undefined,
  } as Ivoa.ScheduledExecutionSession;
}

export function offerSetDocument(
  record: OfferSetRecord,
  offers: StepRecord[],
  baseUrl: string,
): Ivoa.OfferSetResponse {
  return {
    ...record.document,
    meta: {
      ...record.document.meta,
      uuid: record.id,
      url: `${baseUrl}/offersets/${record.id}`,
      created: iso(record.created),
    },
    result: record.result,
    offers: offers.map((offer) => stepDocument(offer, baseUrl)),
  };
}
