import type { AuthMode } from '../identity/identity.ts';

/**
 * Reading configuration from the environment, with defaults, and errors that name the variable
 * and what it should have been.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function envString(env: Env, name: string, fallback: string): string;
export function envString(env: Env, name: string): string | undefined;
export function envString(env: Env, name: string, fallback?: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

export function envNumber(
  env: Env,
  name: string,
  fallback: number,
  { min = -Infinity, max = Infinity } = {},
): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${text} must be a number between ${min} and ${max}`);
  }
  return value;
}

export function envChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  if (!choices.includes(text as T))
    throw new ConfigError(`${name}=${text} must be one of ${choices.join(', ')}`);
  return text as T;
}

/**
 * The secret every service falls back on in dev mode (the signatures between gateway, broker and
 * workers), the same everywhere so that `npm start` runs with no settings. AUTH_MODE=jwt requires
 * each secret to be set.
 */
export const DEV_SECRET = 'dev-only-secret-change-me';

/** A secret from the environment: in dev mode `devDefault` stands in for a missing one; otherwise it must be set. */
export function envSecret(
  env: Env,
  name: string,
  authMode: AuthMode,
  devDefault: string = DEV_SECRET,
): string {
  const value = envString(env, name);
  if (value) return value;
  if (authMode === 'dev') return devDefault;
  throw new ConfigError(`${name} must be set when AUTH_MODE=${authMode}`);
}

export function envList(env: Env, name: string, fallback: readonly string[]): string[] {
  const text = env[name];
  if (text === undefined) return [...fallback];
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
