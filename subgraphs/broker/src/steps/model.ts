import type { Ivoa } from '@srcnet/execution-step-schema';
import type { StepPhase } from '../lifecycle/transitions.ts';

/**
 * A step as the broker stores it: the IVOA session document (canonical kinds, components with
 * their phases and schedules) plus the columns the broker queries by. `meta.url` and
 * `meta.options` are not stored; they depend on who asks and when (see steps/documents.ts).
 */
export interface StepRecord {
  id: string;
  offerSetId: string | null;
  owner: string;
  phase: StepPhase;
  executableKind: string | null;
  created: number;
  modified: number;
  /** When an OFFERED step lapses. */
  expires: number | null;
  /** The booked window, epoch ms. */
  availableStart: number;
  availableEnd: number;
  cores: number;
  memoryGiB: number;
  storageGiB: number;
  document: Ivoa.ScheduledExecutionSession;
  /** The preparation estimate the offered start rested on, as made then (null for older steps). */
  estimates: Ivoa.PreparationEstimates | null;
  /** Bumped on every write, so that concurrent writers notice each other. */
  version: number;
}

export interface OfferSetRecord {
  id: string;
  owner: string;
  result: 'YES' | 'NO';
  created: number;
  expires: number;
  document: Ivoa.OfferSetResponse;
}

export interface HistoryRecord {
  stepId: string;
  at: number;
  from: StepPhase | null;
  to: StepPhase;
  cause: string;
}

/** The roles a step's components play, by which commands and callbacks name them. */
export type ComponentRole = 'executable' | 'compute' | 'storage' | 'data';

export interface ComponentRef {
  role: ComponentRole;
  uuid: string;
  kind: string;
  phase: Ivoa.LifecyclePhase;
}

type AnyComponent = { kind: string; meta?: Ivoa.ComponentMetadata; phase?: Ivoa.LifecyclePhase };

/** Every component of a step with its role, in a stable order (executable, compute, storage, data). */
export function componentsOf(document: Ivoa.ScheduledExecutionSession): ComponentRef[] {
  const refs: ComponentRef[] = [];
  const add = (role: ComponentRole, component: AnyComponent | undefined) => {
    if (component?.meta?.uuid)
      refs.push({
        role,
        uuid: component.meta.uuid,
        kind: component.kind,
        phase: component.phase ?? 'INITIALIZING',
      });
  };
  add('executable', document.executable as AnyComponent | undefined);
  add('compute', document.compute as AnyComponent | undefined);
  for (const storage of (document.storage ?? []) as AnyComponent[]) add('storage', storage);
  for (const data of (document.data ?? []) as AnyComponent[]) add('data', data);
  return refs;
}

/** The component with this uuid, to change in place (the document is the step's own copy). */
export function componentByUuid(
  document: Ivoa.ScheduledExecutionSession,
  uuid: string,
): AnyComponent | undefined {
  const all = [
    document.executable,
    document.compute,
    ...(document.storage ?? []),
    ...(document.data ?? []),
  ] as (AnyComponent | undefined)[];
  return all.find((component) => component?.meta?.uuid === uuid);
}
