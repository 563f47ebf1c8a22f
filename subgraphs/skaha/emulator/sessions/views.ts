import { createHash } from 'node:crypto';
import type {
  PublicSessionJson,
  ResourceContext,
  ResourceStats,
  SessionJson,
} from '../../src/skaha/types.ts';
import type { Capacity, PodEvent, SessionRecord } from './engine.ts';

export interface ViewSettings {
  /** Host name of the session ingress, for connectURL. */
  sessionsHost: string;
  /** Absolute path of the user home directories, as the notebook URL shows it. */
  homeDir: string;
}

/** Skaha prints times without fractions of a second. */
export const isoTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A stable POSIX id per user name, as the POSIX mapper would hand out. */
function posixId(user: string): number {
  return 10_000 + (createHash('sha256').update(user).digest().readUInt32BE(0) % 50_000);
}

/** The patterns of Skaha's SessionURLBuilder; empty for headless sessions and apps. */
export function connectURL(record: SessionRecord, settings: ViewSettings): string {
  const base = `https://${settings.sessionsHost}/session`;
  const id = record.id;
  switch (record.type) {
    case 'desktop':
      return `${base}/desktop/${id}/?password=${id}&path=session/desktop/${id}/`;
    case 'notebook': {
      const home = settings.homeDir.split('/').filter(Boolean).join('/');
      return `${base}/notebook/${id}/lab/tree/${home}/${record.owner}?token=${id}`;
    }
    case 'carta':
      return `${base}/carta/${id}/`;
    case 'contributed':
      return `${base}/contrib/${id}/`;
    case 'firefly':
      return `${base}/firefly/${id}/firefly/`;
    default:
      return '';
  }
}

const decimal = (value: number) => String(Number(value.toFixed(3)));

/** The Session JSON; like Gson, fields without a value are left out. */
export function sessionJson(record: SessionRecord, settings: ViewSettings): SessionJson {
  const uid = String(posixId(record.owner));
  const json: SessionJson = {
    id: record.id,
    userid: record.owner,
    runAsUID: uid,
    runAsGID: uid,
    supplementalGroups: [posixId(`${record.owner}-group`)],
    ...(record.appid ? { appid: record.appid } : {}),
    image: record.image,
    type: record.type,
    status: record.status,
    name: record.name,
  };
  if (record.startedAt !== undefined) {
    json.startTime = isoTime(record.startedAt);
    json.expiryTime = isoTime(record.startedAt + record.deadlineSeconds * 1000);
  }
  json.connectURL = connectURL(record, settings);
  if (record.fixed) {
    json.requestedRAM = record.request.ramGB.toFixed(2);
    json.requestedCPUCores = decimal(record.request.cores);
  }
  json.requestedGPUCores = String(record.gpus);
  if (record.usage) {
    json.ramInUse = record.usage.ramGB.toFixed(2);
    json.cpuCoresInUse = decimal(record.usage.cores);
  }
  json.isFixedResources = record.fixed;
  return json;
}

export function publicSessionJson(record: SessionRecord): PublicSessionJson {
  return {
    userid: record.owner,
    type: record.type,
    status: record.status,
    ...(record.startedAt === undefined ? {} : { startTime: isoTime(record.startedAt) }),
  };
}

const gigabytes = (value: number) => `${Number(value.toFixed(2))}G`;

/** `view=stats`: cluster requests against capacity, and the per-session ceiling. */
export function statsJson(used: Capacity, cluster: Capacity, context: ResourceContext): ResourceStats {
  return {
    cores: {
      requestedCPUCores: Number(used.cores.toFixed(3)),
      cpuCoresAvailable: cluster.cores,
      maxCPUCores: {
        cpuCores: context.cores.defaultLimit,
        withRam: gigabytes(context.memoryGB.defaultLimit),
      },
    },
    ram: {
      requestedRAM: gigabytes(used.ramGB),
      ramAvailable: gigabytes(cluster.ramGB),
      maxRAM: { ram: gigabytes(context.memoryGB.defaultLimit), withCPUCores: context.cores.defaultLimit },
    },
  };
}

/** kubectl custom-columns output: columns padded to the widest cell plus three spaces. */
export function eventsTable(events: PodEvent[]): string {
  if (events.length === 0) return '<none>\n';
  const rows = [
    ['TYPE', 'REASON', 'MESSAGE', 'FIRST-TIME', 'LAST-TIME'],
    ...events.map((e) => [e.type, e.reason, e.message, isoTime(e.at), isoTime(e.at)]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row.map((cell, column) => (column < row.length - 1 ? cell.padEnd(widths[column]! + 3) : cell)).join(''),
    )
    .join('\n')
    .concat('\n');
}

export function logsText(record: SessionRecord): string {
  return record.logs.map((line) => `${line}\n`).join('');
}
