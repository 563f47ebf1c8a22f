/**
 * The emulator's names for what a request asks; fault switches select by them and request
 * statistics count by them (a `view` makes a different operation of the same route).
 */
export const OPERATIONS = [
  'createSession',
  'listSessions',
  'listPublicSessions',
  'getStats',
  'getSession',
  'getSessionLogs',
  'getSessionEvents',
  'renewSession',
  'deleteSession',
  'listApps',
  'attachApp',
  'getApp',
  'deleteApp',
  'listImages',
  'getContext',
  'listRepositories',
  'registerCallback',
  'listCallbacks',
  'getCallback',
  'unregisterCallback',
] as const;

export type Operation = (typeof OPERATIONS)[number];
