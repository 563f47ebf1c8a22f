/**
 * The page is served from Vite's build in portal/dist. `npm start` from a clean clone has none, and
 * a checkout whose sources changed since the last build has a stale one: either way it is built
 * before the server listens. Several portal servers may start at once (the e2e scenarios run in
 * parallel), so one builds under a lock file while the others wait for it.
 */
import { closeSync, existsSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const PORTAL_DIR = resolve(import.meta.dirname, '..');
export const DIST_DIR = join(PORTAL_DIR, 'dist');
const LOCK = join(PORTAL_DIR, '.build.lock');
/** A lock older than this was left by a build that died. */
const STALE_LOCK_MS = 120_000;

const SOURCES = ['index.html', 'vite.config.ts', 'src', '../schema/client/src'];

function newestSource(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestSource(join(path, name))));
}

export function isBuildCurrent(): boolean {
  const built = join(DIST_DIR, 'index.html');
  if (!existsSync(built)) return false;
  const sources = Math.max(...SOURCES.map((source) => newestSource(resolve(PORTAL_DIR, source))));
  return statSync(built).mtimeMs >= sources;
}

function tryLock(): boolean {
  try {
    closeSync(openSync(LOCK, 'wx'));
    return true;
  } catch {
    if (Date.now() - statSync(LOCK, { throwIfNoEntry: false })!.mtimeMs > STALE_LOCK_MS)
      rmSync(LOCK, { force: true });
    return false;
  }
}

/** Builds portal/dist unless it is current; returns whether this call built it. */
export async function ensureBuilt(log: (line: string) => void = () => {}): Promise<boolean> {
  while (!isBuildCurrent()) {
    if (!tryLock()) {
      await new Promise((retry) => setTimeout(retry, 200));
      continue;
    }
    try {
      if (isBuildCurrent()) return false;
      log('portal: building the page with Vite (portal/dist is missing or older than its sources)');
      const { build } = await import('vite');
      await build({ configFile: join(PORTAL_DIR, 'vite.config.ts'), logLevel: 'warn' });
      return true;
    } finally {
      rmSync(LOCK, { force: true });
    }
  }
  return false;
}
