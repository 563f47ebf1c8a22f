/**
 * The two-way mapping between an ExecutionStep's compute (cores and memory as min/max ranges,
 * memory in GiB) and Skaha's resources (docs/skaha.md "Resources").
 *
 * Skaha has two kinds of session. A fixed one is created with `cores` and `ram`, each one of the
 * `/context` options; request equals limit, so that is exactly what the session gets. A flexible
 * one is created without them; it is guaranteed the flexible request (`defaultRequest` in
 * `/context`) and may burst to `defaultLimit`. Skaha's `ram` is applied as Kubernetes `Gi`, so
 * its "GB" are GiB here and no conversion is made.
 *
 * Step to Skaha: a range that admits the flexible session (min at or below the flexible request
 * and max, when given, at or above the flexible limit) launches a flexible session; any other
 * range launches a fixed one with the smallest option at or above min, which must not exceed max.
 * Skaha to step: a fixed session is the range [requested, requested]; a flexible one is
 * [defaultRequest, defaultLimit]. Each direction undoes the other: a range read from a session
 * launches the same kind of session with the same figures.
 */
import type { ResourceContext, Session } from '../skaha/index.ts';
import { sessionResources } from '../skaha/index.ts';

export interface Range {
  min?: number;
  max?: number;
}

export interface StepCompute {
  cores?: Range;
  /** GiB. */
  memory?: Range;
}

export type SkahaResources =
  | { fixed: true; cores: number; ram: number }
  | { fixed: false; request: { cores: number; ram: number }; limit: { cores: number; ram: number } };

/** Why a range cannot be met with the options of this Skaha deployment. */
export class ResourceMappingError extends Error {
  override readonly name = 'ResourceMappingError';
}

function admitsFlexible(range: Range | undefined, request: number, limit: number): boolean {
  return (range?.min ?? 0) <= request && (range?.max ?? Infinity) >= limit;
}

function fixedValue(field: string, range: Range | undefined, options: number[]): number {
  const min = Math.max(range?.min ?? 1, 1);
  const choice = [...options].sort((a, b) => a - b).find((option) => option >= min);
  if (choice === undefined || (range?.max !== undefined && choice > range.max))
    throw new ResourceMappingError(
      `compute.${field} ${range?.min ?? '-'}..${range?.max ?? '-'} has no Skaha option in range (options: ${options.join(', ')})`,
    );
  return choice;
}

/** What to create for a step's compute: a flexible session, or fixed cores and ram. */
export function skahaResourcesFor(
  compute: StepCompute | undefined,
  context: ResourceContext,
): SkahaResources {
  const request = { cores: context.cores.defaultRequest, ram: context.memoryGB.defaultRequest };
  const limit = { cores: context.cores.defaultLimit, ram: context.memoryGB.defaultLimit };
  if (
    admitsFlexible(compute?.cores, request.cores, limit.cores) &&
    admitsFlexible(compute?.memory, request.ram, limit.ram)
  )
    return { fixed: false, request, limit };
  return {
    fixed: true,
    cores: fixedValue('cores', compute?.cores, context.cores.options),
    ram: fixedValue('memory', compute?.memory, context.memoryGB.options),
  };
}

/** A session's resources as an ExecutionStep compute range. */
export function stepComputeOf(
  session: Omit<Session, 'status' | 'rawStatus'>,
  context: ResourceContext,
): StepCompute {
  const resources = sessionResources(session);
  if (resources.fixed && resources.requestedCPUCores !== undefined && resources.requestedRAMGB !== undefined)
    return {
      cores: { min: resources.requestedCPUCores, max: resources.requestedCPUCores },
      memory: { min: resources.requestedRAMGB, max: resources.requestedRAMGB },
    };
  return {
    cores: { min: context.cores.defaultRequest, max: context.cores.defaultLimit },
    memory: { min: context.memoryGB.defaultRequest, max: context.memoryGB.defaultLimit },
  };
}
