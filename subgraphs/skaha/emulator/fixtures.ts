import { createHash } from 'node:crypto';
import type { ImageJson, ResourceContext } from '../src/skaha/types.ts';

/** Shaped like the shipped `k8s-resources.json` (backends.md §1.5 Context). */
export function defaultContext(): ResourceContext {
  return {
    cores: { default: 2, defaultRequest: 1, defaultLimit: 8, options: range(1, 16) },
    memoryGB: {
      default: 8,
      defaultRequest: 4,
      defaultLimit: 32,
      options: [1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 160, 192],
    },
    gpus: { options: range(1, 28) },
    maxInteractiveSessions: 5,
  };
}

export const DEFAULT_REGISTRY_HOSTS = ['images.canfar.net'];

/** What Skaha's Harbor-label image cache would hold: public, labelled, tagged images only. */
export function defaultImages(): ImageJson[] {
  const image = (id: string, types: string[]): ImageJson => ({
    id,
    types,
    digest: 'sha256:' + createHash('sha256').update(id).digest('hex'),
  });
  return [
    image('images.canfar.net/skaha/astroml:26.04', ['notebook', 'headless']),
    image('images.canfar.net/skaha/desktop:1.2.0', ['desktop']),
    image('images.canfar.net/skaha/terminal:1.1.2', ['desktop-app', 'headless']),
    image('images.canfar.net/skaha/carta:4.1', ['carta']),
    image('images.canfar.net/skaha/firefly:2025.1', ['firefly']),
    image('images.canfar.net/srcnet/pluto:2.1', ['contributed']),
    image('images.canfar.net/srcnet/hello-headless:1.0', ['headless']),
  ];
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
