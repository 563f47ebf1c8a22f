import { schemaNameForKind, type Ivoa } from '@srcnet/execution-step-schema';
import type {
  ComponentEstimate as EstimatorComponent,
  DataStagingParams,
  Estimate,
  Estimator,
  ImageCopyParams,
  SessionStartParams,
} from '../estimates/index.ts';
import type { CheckedRequest } from './checks.ts';
import type { EstimateSource } from './estimate.ts';
import type { CheckImage, ImageCheck } from './image-check.ts';
import type { ComponentEstimate, PreparationEstimate } from './make.ts';

/**
 * Preparation estimates from what preparation actually took (the estimator of estimates/, fed
 * with the workers' observations) and, for a container, from the Harbor worker's look at its
 * image. Components follow the same critical path as the reference's constants: the executable
 * and each storage with its data prepare side by side, then the session starts. The estimator's
 * bounds are union bounds (docs/estimation.md, "A whole step"), so the step's bound holds at
 * its quantile whatever the dependence between components.
 */

export interface LearnedEstimateOptions {
  estimator: Estimator;
  /** The Harbor worker's image check; absent when no Harbor worker is configured. */
  checkImage?: CheckImage;
  /** Steps preparing now: the load an action starting now would meet. */
  preparing: () => Promise<number>;
  now?: () => number;
}

/** Storage has no observed action; the reference's constant stands. */
const STORAGE_SECONDS = 1;

export function learnedEstimate(options: LearnedEstimateOptions): EstimateSource {
  const now = options.now ?? Date.now;
  return async (checked) => {
    const executable = checked.executable;
    const docker =
      executable && schemaNameForKind(executable.kind) === 'DockerContainer'
        ? (executable as unknown as Ivoa.DockerContainer)
        : undefined;
    const [check, inFlight] = await Promise.all([
      docker && options.checkImage
        ? options.checkImage({ locations: docker.image?.locations ?? [], digest: docker.image?.digest })
        : undefined,
      options.preparing(),
    ]);
    if (check?.outcome === 'refused') return refused(check.problem);

    const data = checked.data.map((d) => dataParams(d, checked, inFlight));
    const image = docker ? imageParams(docker, check) : undefined;
    const session = sessionParams(checked, inFlight);
    const made = options.estimator.estimatePreparation({ data, image, session, at: now() });

    const components: ComponentEstimate[] = [];
    const add = (
      role: string,
      uuid: string | undefined,
      estimate: Omit<ComponentEstimate, 'role' | 'uuid'>,
      params?: DataStagingParams | ImageCopyParams | SessionStartParams,
    ) => {
      components.push({ role, uuid, ...estimate, ...(params && { params: { ...params } }) });
      return estimate;
    };
    const dataEstimates = new Map(
      checked.data.map((d, i) => [
        d.meta!.uuid!,
        add('data', d.meta!.uuid, learned(made.components[i]!), data[i]),
      ]),
    );
    let executableEstimate = { medianSeconds: 0, boundSeconds: 0 };
    if (image) {
      const copy = made.components[data.length]!;
      executableEstimate = add('executable', executable!.meta!.uuid, imageEstimate(copy, check), image);
    } else if (executable) {
      executableEstimate = add('executable', executable.meta!.uuid, {
        ...executableEstimate,
        basis: { group: 'nothing to prepare: launched with the session', n: 0, level: 'default' },
      });
    }
    const path = (pick: 'medianSeconds' | 'boundSeconds') =>
      Math.max(
        executableEstimate[pick],
        ...checked.storage.map((s) => {
          const mine = checked.data.filter((d) => d.storage === s.meta!.uuid);
          return STORAGE_SECONDS + Math.max(0, ...mine.map((d) => dataEstimates.get(d.meta!.uuid!)![pick]));
        }),
      );
    for (const s of checked.storage)
      add('storage', s.meta!.uuid, {
        medianSeconds: STORAGE_SECONDS,
        boundSeconds: STORAGE_SECONDS,
        basis: { group: 'storage (reference constant)', n: 0, level: 'default' },
      });
    const start = add('compute', checked.compute.meta!.uuid, learned(made.components.at(-1)!), session);
    return {
      medianSeconds: path('medianSeconds') + start.medianSeconds,
      boundSeconds: path('boundSeconds') + start.boundSeconds,
      quantile: made.quantile,
      components,
      ...(check?.outcome === 'unknown' && {
        warnings: [
          {
            kind: 'urn:image-not-checked',
            template:
              'The image could not be checked: ${reason}. The offered start allows ${seconds} s to copy it (${basis})',
            values: {
              reason: check.reason,
              seconds: Math.round(executableEstimate.boundSeconds * 10) / 10,
              basis: describe(made.components[data.length]!),
            },
          },
        ],
      }),
    };
  };
}

/** The Harbor worker's words (docs/harbor.md): `digest mismatch: …` or `image not found: …`. */
function refused(problem: string): PreparationEstimate {
  const mismatch = /digest mismatch/i.test(problem);
  const field = mismatch ? 'executable.image.digest' : 'executable.image.locations';
  return {
    medianSeconds: 0,
    boundSeconds: 0,
    components: [],
    refusals: [
      {
        kind: mismatch ? 'urn:bad-value' : 'urn:resource-not-found',
        template: 'The image named by ${field} cannot be used: ${problem}',
        values: { field, problem },
      },
    ],
  };
}

/** The estimator's figures and where they come from. */
function learned(estimate: EstimatorComponent): Omit<ComponentEstimate, 'role' | 'uuid'> {
  return {
    action: estimate.action,
    medianSeconds: estimate.medianSeconds,
    boundSeconds: estimate.boundSeconds,
    quantile: estimate.quantile,
    basis: { ...estimate.basis },
  };
}

/** Where an estimate comes from, in words: for the messages on an offer set. */
function describe(estimate: Estimate): string {
  const { level, n, group } = estimate.basis;
  return level === 'default'
    ? `reference constant: no history yet for ${group.replace(/ \(reference constant\)$/, '')}`
    : `learned (${level}, n=${n}) at ${Math.round(estimate.quantile * 1000) / 10}%: ${group}`;
}

/**
 * Until the estimator has copies of this kind to go by, the Harbor worker's size-based estimate
 * is better than the reference's 60 s; so is it when the size is unknown, since the estimator
 * would then see a copy of nothing.
 */
function imageEstimate(
  copy: EstimatorComponent,
  check: ImageCheck | undefined,
): Omit<ComponentEstimate, 'role' | 'uuid'> {
  if (check?.outcome === 'unknown') {
    return { ...learned(copy), note: `image not checked: ${check.reason}` };
  }
  if (
    check?.outcome === 'found' &&
    !check.availableLocally &&
    check.estimatedCopySeconds !== null &&
    (copy.basis.level === 'default' || check.sizeBytes === null)
  ) {
    const size = check.sizeBytes === null ? 'size unknown' : `${Math.round(check.sizeBytes / 1e6)} MB`;
    return {
      action: 'image-copy',
      medianSeconds: check.estimatedCopySeconds,
      boundSeconds: check.estimatedCopySeconds,
      basis: { group: `Harbor worker: a copy of ${check.reference} (${size})`, n: 0, level: 'worker' },
    };
  }
  return learned(copy);
}

/** Host of an image reference, as the Harbor worker records it (docker.io for bare names). */
function registryOf(reference: string): string {
  const first = reference.split('/')[0]!;
  return reference.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first
    : 'docker.io';
}

function imageParams(docker: Ivoa.DockerContainer, check: ImageCheck | undefined): ImageCopyParams {
  if (check?.outcome === 'found')
    return {
      bytes: check.sizeBytes ?? 0,
      registry: registryOf(check.reference),
      local: check.availableLocally,
    };
  // Unchecked: with no Harbor at all there is nothing to copy; with one that did not answer,
  // assume the copy, so that the promise errs late rather than early.
  return { bytes: 0, registry: registryOf(docker.image?.locations?.[0] ?? ''), local: check === undefined };
}

type Component = CheckedRequest['data'][number];

/** Where the data come from and how big they are, as far as the request says before staging. */
function dataParams(data: Component, checked: CheckedRequest, inFlight: number): DataStagingParams {
  const host = (url: unknown) => {
    try {
      return new URL(String(url)).host || 'unknown';
    } catch {
      return 'unknown';
    }
  };
  let bytes = 0;
  let sourceSite = 'unknown';
  switch (schemaNameForKind(data.kind)) {
    case 'SkaoDataResource': {
      const skao = (data as unknown as Ivoa.SkaoDataResource).skao;
      bytes = skao?.datasize ?? 0;
      sourceSite = skao?.replicas?.[0]?.rsename ?? 'unknown';
      break;
    }
    case 'SimpleDataResource':
      sourceSite = host(data.location);
      break;
    case 'S3DataResource':
      sourceSite = host(data.endpoint);
      break;
  }
  const storage = checked.storage.find((s) => s.meta?.uuid === data.storage);
  return { bytes, sourceSite, targetStorage: storage?.meta?.name ?? '', inFlight };
}

function sessionParams(checked: CheckedRequest, inFlight: number): SessionStartParams {
  const executable = checked.executable && schemaNameForKind(checked.executable.kind);
  // The estimator works on logs of both: a minimum of zero counts as one.
  const cores = (checked.compute.cores as { min: number } | undefined)?.min || 1;
  const memoryGiB = (checked.compute.memory as { min: number } | undefined)?.min || 1;
  // As the Skaha worker maps executables to session types (docs/skaha.md, "Executables").
  return { type: executable === 'JupyterNotebook' ? 'notebook' : 'headless', cores, memoryGiB, inFlight };
}
