import type { SessionJson } from './types.ts';

/**
 * Skaha sends resource figures as strings whose format changed over releases ("8.00" GB today,
 * "16G" or "101Mi" before, "<none>" for no GPU); these helpers read all of them and give
 * undefined for anything else rather than a wrong number.
 */

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e-6,
  K: 1e-6,
  M: 1e-3,
  G: 1,
  T: 1e3,
  Ki: 1024 / 1e9,
  Mi: 1024 ** 2 / 1e9,
  Gi: 1024 ** 3 / 1e9,
  Ti: 1024 ** 4 / 1e9,
};

/** Gigabytes (10^9 bytes) from "8.00", "16G", "1.5Gi", "101Mi"; a bare number is already GB. */
export function parseMemoryGB(text: string | undefined): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?)?B?\s*$/.exec(text ?? '');
  if (!match) return undefined;
  const factor = MEMORY_UNITS[match[2] ?? ''];
  return factor === undefined ? undefined : Number(match[1]) * factor;
}

/** Cores from "2", "0.015" or Kubernetes millicores "500m". */
export function parseCores(text: string | undefined): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)(m?)\s*$/.exec(text ?? '');
  if (!match) return undefined;
  return match[2] ? Number(match[1]) / 1000 : Number(match[1]);
}

/** Milliseconds since the epoch from Skaha's ISO-8601 times. */
export function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const value = Date.parse(text);
  return Number.isNaN(value) ? undefined : value;
}

export interface SessionResources {
  requestedRAMGB?: number;
  requestedCPUCores?: number;
  requestedGPUs?: number;
  ramInUseGB?: number;
  cpuCoresInUse?: number;
  /** Skaha omits the flag on old servers; its own client then assumes fixed. */
  fixed: boolean;
}

/** The resource strings of a session as numbers; fields Skaha did not send stay absent. */
export function sessionResources(session: Omit<SessionJson, 'status'>): SessionResources {
  const result: SessionResources = { fixed: session.isFixedResources ?? true };
  const set = <K extends keyof SessionResources>(key: K, value: SessionResources[K] | undefined) => {
    if (value !== undefined) result[key] = value;
  };
  set('requestedRAMGB', parseMemoryGB(session.requestedRAM));
  set('requestedCPUCores', parseCores(session.requestedCPUCores));
  set('requestedGPUs', parseCores(session.requestedGPUCores));
  set('ramInUseGB', parseMemoryGB(session.ramInUse));
  set('cpuCoresInUse', parseCores(session.cpuCoresInUse));
  return result;
}
