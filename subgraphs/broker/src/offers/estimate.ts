import { schemaNameForKind } from '@srcnet/execution-step-schema';
import type { CheckedRequest } from './checks.ts';
import type { Action } from '../estimates/index.ts';
import type { PreparationEstimate } from './make.ts';

/**
 * How offers learn how long a checked request takes to prepare. It may ask a worker, so it may be
 * async; the offer-making that uses it (make.ts) stays pure.
 */
export type EstimateSource = (checked: CheckedRequest) => PreparationEstimate | Promise<PreparationEstimate>;

/**
 * The reference broker's fixed preparation times (calycopis.md §3.4), combined along the same
 * critical path: the executable and each storage with its data prepare side by side, then the
 * session starts.
 */
const SECONDS: Record<string, number> = {
  DockerContainer: 1,
  SingularityContainer: 1,
  JupyterNotebook: 5,
  SimpleComputeResource: 1,
  SimpleStorageResource: 1,
  data: 30,
};

/** The action each constant stands for, as the learned estimates name them. */
const ACTION_OF: Record<string, Action> = {
  data: 'data-staging',
  compute: 'session-start',
  DockerContainer: 'image-copy',
};

export function constantEstimate(checked: CheckedRequest): PreparationEstimate {
  const seconds = (kind: string, role: string) =>
    SECONDS[schemaNameForKind(kind) ?? ''] ?? (role === 'data' ? SECONDS.data! : 1);
  const components: PreparationEstimate['components'] = [];
  const add = (role: string, component: { kind: string; meta?: { uuid?: string } } | undefined) => {
    if (!component) return 0;
    const s = seconds(component.kind, role);
    components.push({
      role,
      uuid: component.meta?.uuid,
      action: ACTION_OF[role] ?? ACTION_OF[schemaNameForKind(component.kind) ?? ''],
      medianSeconds: s,
      boundSeconds: s,
      basis: { group: `${role} (reference constant)`, n: 0, level: 'default' },
    });
    return s;
  };
  const executable = add('executable', checked.executable);
  const staging = Math.max(
    executable,
    ...checked.storage.map((storage) => {
      const own = add('storage', storage);
      const data = checked.data.filter((d) => d.storage === storage.meta?.uuid).map((d) => add('data', d));
      return own + Math.max(0, ...data);
    }),
  );
  const total = staging + add('compute', checked.compute);
  return { boundSeconds: total, medianSeconds: total, components };
}

/** No preparation time at all: for benchmarks of the broker's own speed. */
export const zeroEstimate = (): PreparationEstimate => ({
  boundSeconds: 0,
  medianSeconds: 0,
  components: [],
});
