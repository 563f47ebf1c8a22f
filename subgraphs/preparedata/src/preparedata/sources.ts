/**
 * What prepareData is asked to fetch for each IVOA ExecutionBroker data resource kind
 * (reference/calycopis.md §2.8). Kinds are recognised by their blocks rather than their type
 * URIs, which changed between schema versions.
 */
import { checkDid, checkUrl, StageRequestError } from './request.ts';
import type { Did } from './types.ts';

/** The fields of the data resource kinds that matter for staging; everything else is ignored. */
export interface DataResourceLike {
  name?: string;
  skao?: { namespace?: string; objectname?: string; datasize?: number | string };
  rucio?: { scope?: string; object?: string };
  ivoa?: {
    obscore?: { access_url?: string; access_format?: string };
    datalink?: { access_url?: string; content_length?: number };
  };
  endpoint?: string;
  bucket?: string;
  object?: string;
  location?: string;
}

export type StageSource =
  { kind: 'did'; did: Did; bytesHint?: number } | { kind: 'url'; url: string; bytesHint?: number };

const DATALINK_FORMAT = /content=datalink/i;

export function stageSourceOf(resource: DataResourceLike): StageSource {
  const where = resource.name ? `data resource ${resource.name}` : 'data resource';
  if (resource.skao) {
    const { namespace = '', objectname = '', datasize } = resource.skao;
    const did = checkDid({ namespace, name: objectname }, `${where}.skao`);
    const bytes = Number(datasize);
    return Number.isSafeInteger(bytes) && bytes >= 0
      ? { kind: 'did', did, bytesHint: bytes }
      : { kind: 'did', did };
  }
  if (resource.rucio) {
    const { scope = '', object = '' } = resource.rucio;
    return { kind: 'did', did: checkDid({ namespace: scope, name: object }, `${where}.rucio`) };
  }
  if (resource.ivoa) {
    // The DataLink #this link is the file itself; an ObsCore access_url is the file only when it
    // is not itself a DataLink document.
    const link = resource.ivoa.datalink?.access_url;
    if (link) {
      const bytes = resource.ivoa.datalink?.content_length;
      const url = checkUrl(link, `${where}.ivoa.datalink.access_url`);
      return bytes === undefined ? { kind: 'url', url } : { kind: 'url', url, bytesHint: bytes };
    }
    const obscore = resource.ivoa.obscore;
    if (obscore?.access_url && !DATALINK_FORMAT.test(obscore.access_format ?? ''))
      return { kind: 'url', url: checkUrl(obscore.access_url, `${where}.ivoa.obscore.access_url`) };
    throw new StageRequestError(
      `${where}.ivoa needs datalink.access_url, or an obscore.access_url that is not a DataLink document`,
    );
  }
  if (resource.bucket !== undefined || resource.endpoint !== undefined) {
    if (!resource.endpoint || !resource.bucket)
      throw new StageRequestError(`${where} (S3) needs both endpoint and bucket`);
    // A blank object means the whole bucket.
    const url = `${resource.endpoint.replace(/\/+$/, '')}/${resource.bucket}/${resource.object ?? ''}`;
    return { kind: 'url', url: checkUrl(url, `${where} (S3 endpoint/bucket/object)`) };
  }
  if (resource.location) return { kind: 'url', url: checkUrl(resource.location, `${where}.location`) };
  throw new StageRequestError(`${where} has none of skao, rucio, ivoa, S3 endpoint/bucket or location`);
}
