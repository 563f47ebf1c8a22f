import { connect } from 'node:net';

/**
 * Whether the PostgreSQL and Redis that some tests need are reachable. On a laptop without them
 * those tests skip with a visible message; under CI=true they must run, so unreachable is an error.
 */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const socket = connect({ host: hostname, port: Number(port), timeout: 1000 }, () => {
      socket.end();
      done(true);
    });
    socket.on('error', () => done(false));
    socket.on('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

/** Resolves true when the service can be used; false (after saying so) when the test should skip. */
export async function serviceAvailable(name: 'PostgreSQL' | 'Redis'): Promise<boolean> {
  const url = name === 'PostgreSQL' ? TEST_DATABASE_URL : TEST_REDIS_URL;
  if (await reachable(url)) return true;
  if (process.env.CI === 'true') throw new Error(`${name} at ${url} is unreachable, and CI=true requires it`);
  console.warn(
    `SKIPPED: ${name} at ${url} is unreachable; tests that need it are skipped (set CI=true to make this an error)`,
  );
  return false;
}
