/**
 * What Skaha session a step's executable becomes (docs/skaha.md "Executables"):
 * JupyterNotebook → a `notebook` session of the configured notebook image; DockerContainer →
 * a `headless` session of its image (the local Harbor copy when there is one), its entrypoint as
 * `cmd`, its command as `args` and its environment as `env`; SingularityContainer → a `headless`
 * session when its location is an OCI reference (`docker://host/repo:tag` or `host/repo:tag`),
 * since Skaha runs OCI images only, and a clear failure for a `.sif` file or an http URL.
 */
import { schemaNameForKind, type Ivoa } from '@srcnet/execution-step-schema';
import type { CreateSessionRequest, SessionType } from '../skaha/index.ts';

export interface LaunchPlan {
  type: Extract<SessionType, 'notebook' | 'headless'>;
  image: string;
  cmd?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** A step the worker cannot launch, with the reason the broker shows. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
}

/** Skaha's name for the session of a step: unique per step, so a lost create can be looked up by name. */
export function sessionName(stepId: string): string {
  return `step-${stepId.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63);
}

/** Whether the executable needs nothing prepared by this worker: Skaha pulls the image itself. */
export function executableIsImmediate(kind: string): boolean {
  const name = schemaNameForKind(kind);
  return name === 'JupyterNotebook' || name === 'SingularityContainer';
}

export interface LaunchOptions {
  notebookImage: string;
  /** The image to run for a DockerContainer (the local Harbor copy, or the first location). */
  dockerImage?: string;
}

export function launchPlan(executable: Ivoa.Executable | undefined, options: LaunchOptions): LaunchPlan {
  const kind = executable?.kind ?? '';
  switch (schemaNameForKind(kind)) {
    case 'JupyterNotebook':
      return { type: 'notebook', image: options.notebookImage };
    case 'DockerContainer': {
      const docker = executable as Ivoa.DockerContainer;
      const image = options.dockerImage ?? docker.image?.locations?.[0];
      if (!image) throw new LaunchError('executable.image.locations is empty: there is no image to run');
      const plan: LaunchPlan = { type: 'headless', image };
      // Skaha takes one word as the entrypoint; the rest of a longer entrypoint leads the args.
      const entry = docker.entrypoint?.trim().split(/\s+/).filter(Boolean) ?? [];
      if (entry[0]) plan.cmd = entry[0];
      const args = [...entry.slice(1), ...(docker.command ?? [])];
      if (args.length) plan.args = args;
      if (docker.environment && Object.keys(docker.environment).length) plan.env = { ...docker.environment };
      return plan;
    }
    case 'SingularityContainer': {
      const location = (executable as { location?: string }).location ?? '';
      const image = location.replace(/^docker:\/\//, '');
      if (!image || /^[a-z]+:\/\//i.test(image) || image.endsWith('.sif'))
        throw new LaunchError(
          `executable.location ${JSON.stringify(location)}: Skaha runs OCI images only; give a registry reference such as docker://images.canfar.net/project/image:tag`,
        );
      return { type: 'headless', image };
    }
    default:
      throw new LaunchError(`executable.kind ${JSON.stringify(kind)} cannot run on Skaha`);
  }
}

/** The create request for a plan and the resources chosen. */
export function createRequest(
  plan: LaunchPlan,
  name: string,
  resources: { cores?: number; ram?: number },
  extra: Pick<CreateSessionRequest, 'registryAuth' | 'callback'>,
): CreateSessionRequest {
  return { name, ...plan, ...resources, ...extra };
}
