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

export function envList(env: Env, name: string, fallback: readonly string[]): string[] {
  const text = env[name];
  if (text === undefined) return [...fallback];
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
