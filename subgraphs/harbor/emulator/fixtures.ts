/**
 * The default world of `npm start` and `emulator/main.ts`: a public `library` project with a
 * few images, a private `skaha` project to replicate into, proxy caches of ghcr.io and Docker
 * Hub, and upstream images that exist only remotely, including those of the IVOA examples.
 */
import type { HarborEmulatorOptions } from './config.ts';

export const DEFAULT_ADMIN = { username: 'admin', password: 'Harbor12345' };

const MB = 1024 * 1024;

/** The images the IVOA ExecutionBroker examples name (calycopis examples 006 and 013). */
export const IVOA_EXAMPLE_IMAGES = {
  webtop: {
    image: 'ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13',
    digest: 'sha256:5d22a47f43b2b5efc433554092de724bd6c3cf01d2c74038f6569770a5dd5245',
  },
  heliophorus: {
    image: 'ghcr.io/zarquan/heliophorus-cantliei:sha-831ee57',
    digest: 'sha256:6e495692cc6f1cae2023f261f433d4691aa70b19416730f8301e45fbb74bc526',
  },
} as const;

export function defaultOptions(): HarborEmulatorOptions {
  return {
    port: 4104,
    users: { admin: { password: DEFAULT_ADMIN.password, admin: true } },
    // Ten times faster than life: the 1.2 GB webtop copies in about 2.5 s.
    timing: { timeScale: 0.1 },
    upstreamImages: [
      // Stand-ins: we do not have these images' bytes, so their digests are declared.
      { ...IVOA_EXAMPLE_IMAGES.webtop, size: 1200 * MB, layers: 8 },
      { ...IVOA_EXAMPLE_IMAGES.heliophorus, size: 6 * MB, layers: 2 },
      {
        image: 'docker.io/ivoa/oligia-webtop:ubuntu-2022.01.13',
        digest: IVOA_EXAMPLE_IMAGES.webtop.digest,
        size: 1200 * MB,
        layers: 8,
      },
      {
        image: 'ghcr.io/opencadc/notebook:3.12',
        platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
        size: 800 * MB,
        layers: 6,
      },
      {
        image: 'docker.io/library/ubuntu:24.04',
        platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
        size: 30 * MB,
        layers: 1,
        format: 'docker',
      },
    ],
    projects: [
      { name: 'library', public: true },
      { name: 'skaha', public: false },
      {
        name: 'ghcr',
        public: true,
        proxy: { registryName: 'ghcr.io', type: 'github-ghcr', url: 'https://ghcr.io' },
      },
      {
        name: 'dockerhub',
        public: true,
        proxy: { registryName: 'docker-hub', type: 'docker-hub', url: 'https://hub.docker.com' },
      },
    ],
    localImages: [
      { image: 'library/busybox:1.36', size: 2 * MB, layers: 1 },
      {
        image: 'library/alpine:3.20',
        platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
        size: 4 * MB,
        layers: 1,
      },
      { image: 'skaha/astroml:24.07', size: 2500 * MB, layers: 12 },
    ],
  };
}
