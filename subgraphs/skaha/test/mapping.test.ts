import { describe, expect, it } from 'vitest';
import { defaultContext } from '../emulator/index.ts';
import { ResourceMappingError, skahaResourcesFor, stepComputeOf } from '../src/resources/mapping.ts';
import { launchPlan, LaunchError, sessionName } from '../src/sessions/launch.ts';

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/';
const context = defaultContext();

describe('compute ↔ Skaha resources', () => {
  it('launches a fixed session with the smallest options at or above min', () => {
    expect(skahaResourcesFor({ cores: { min: 3, max: 4 }, memory: { min: 5, max: 8 } }, context)).toEqual({
      fixed: true,
      cores: 3,
      ram: 6,
    });
  });

  it('launches a flexible session when the range admits the flexible request and limit', () => {
    expect(skahaResourcesFor({ cores: { min: 1 }, memory: { min: 2, max: 64 } }, context)).toMatchObject({
      fixed: false,
      request: { cores: 1, ram: 4 },
      limit: { cores: 8, ram: 32 },
    });
    expect(skahaResourcesFor(undefined, context).fixed).toBe(false);
  });

  it('refuses a range without an option, naming the field and the options', () => {
    expect(() =>
      skahaResourcesFor({ cores: { min: 1, max: 1 }, memory: { min: 13, max: 15 } }, context),
    ).toThrow(ResourceMappingError);
    expect(() => skahaResourcesFor({ cores: { min: 17, max: 20 } }, context)).toThrow(
      /compute\.cores 17\.\.20/,
    );
  });

  it('round-trips: a range read from a session launches the same session', () => {
    const fixed = {
      id: 'a',
      userid: 'u',
      image: 'i',
      type: 'headless',
      name: 'n',
      requestedCPUCores: '2',
      requestedRAM: '8.00',
      isFixedResources: true,
    };
    expect(skahaResourcesFor(stepComputeOf(fixed, context), context)).toEqual({
      fixed: true,
      cores: 2,
      ram: 8,
    });
    const flexible = {
      ...fixed,
      isFixedResources: false,
      requestedCPUCores: undefined,
      requestedRAM: undefined,
    };
    expect(stepComputeOf(flexible, context)).toEqual({
      cores: { min: 1, max: 8 },
      memory: { min: 4, max: 32 },
    });
    expect(skahaResourcesFor(stepComputeOf(flexible, context), context).fixed).toBe(false);
  });
});

describe('executables → sessions', () => {
  const options = { notebookImage: 'images.canfar.net/skaha/astroml:26.04' };

  it('maps a DockerContainer to a headless session with cmd, args and env', () => {
    const docker = {
      kind: `${KIND}docker-container.yaml`,
      image: { locations: ['images.canfar.net/a/b:1', 'ghcr.io/a/b:1'] },
      entrypoint: 'python -u',
      command: ['run.py', '--n=3'],
      environment: { A: '1' },
    } as never;
    expect(launchPlan(docker, options)).toEqual({
      type: 'headless',
      image: 'images.canfar.net/a/b:1',
      cmd: 'python',
      args: ['-u', 'run.py', '--n=3'],
      env: { A: '1' },
    });
    expect(launchPlan(docker, { ...options, dockerImage: 'harbor.local/p/b@sha256:1' }).image).toBe(
      'harbor.local/p/b@sha256:1',
    );
  });

  it('maps a notebook to a notebook session and a Singularity OCI reference to a headless one', () => {
    expect(launchPlan({ kind: `${KIND}jupyter-notebook.yaml` } as never, options)).toEqual({
      type: 'notebook',
      image: options.notebookImage,
    });
    expect(
      launchPlan(
        { kind: `${KIND}singularity-container.yaml`, location: 'docker://images.canfar.net/a/b:1' } as never,
        options,
      ),
    ).toEqual({
      type: 'headless',
      image: 'images.canfar.net/a/b:1',
    });
    expect(() =>
      launchPlan(
        { kind: `${KIND}singularity-container.yaml`, location: 'https://x.org/a.sif' } as never,
        options,
      ),
    ).toThrow(LaunchError);
  });

  it('names the session after the step, within Skaha’s rules', () => {
    const name = sessionName('0B8E7C1A-6D2F-4E5A-9C3B-1F2E3D4C5B6A');
    expect(name).toBe('step-0b8e7c1a-6d2f-4e5a-9c3b-1f2e3d4c5b6a');
    expect(name).toMatch(/^[a-z0-9-]{1,63}$/);
  });
});
