/** The shared fault switches (@srcnet/service-kit/faults), bound to Skaha's operations and variables. */
import * as shared from '@srcnet/service-kit/faults';
import type { Random } from '@srcnet/service-kit';
import { OPERATIONS, type Operation } from '../operations.ts';

export type { CallbackFaults, FaultKind, FaultSwitch, RequestFaults } from '@srcnet/service-kit/faults';
export type ApiFaults = shared.ApiFaults<Operation>;
export type Faults = shared.Faults<Operation>;

export class FaultInjector extends shared.FaultInjector<Operation> {
  constructor(random: Random, faults: Faults = {}) {
    super(random, OPERATIONS, faults);
  }
}

export const checkFaults = (faults: Faults): Faults => shared.checkFaults(faults, OPERATIONS);

/** Faults from SKAHA_FAULT_* variables (the list is in @srcnet/service-kit/faults). */
export const faultsFromEnv = (env: Record<string, string | undefined>): Faults =>
  shared.faultsFromEnv(env, 'SKAHA', OPERATIONS);
