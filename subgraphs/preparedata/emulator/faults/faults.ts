/** The shared fault switches (@srcnet/service-kit/faults), bound to prepareData's operations and variables. */
import * as shared from '@srcnet/service-kit/faults';
import type { Random } from '@srcnet/service-kit';
import type { OperationName } from '../../src/preparedata/mapping.ts';

export type { CallbackFaults, FaultKind, FaultSwitch, RequestFaults } from '@srcnet/service-kit/faults';
export type ApiFaults = shared.ApiFaults<OperationName>;
export type Faults = shared.Faults<OperationName>;

const OPERATIONS: readonly OperationName[] = [
  'submit',
  'getJob',
  'listJobs',
  'extendLifetime',
  'release',
  'registerCallback',
  'unregisterCallback',
];

export class FaultInjector extends shared.FaultInjector<OperationName> {
  constructor(random: Random, faults: Faults = {}) {
    super(random, OPERATIONS, faults);
  }
}

/** Faults from PREPAREDATA_FAULT_* variables (the list is in @srcnet/service-kit/faults). */
export const faultsFromEnv = (env: Record<string, string | undefined>): Faults =>
  shared.faultsFromEnv(env, 'PREPAREDATA', OPERATIONS);
