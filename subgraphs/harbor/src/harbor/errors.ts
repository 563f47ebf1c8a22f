import type { HarborErrorItem } from './types.ts';

/**
 * Harbor's error codes (`src/lib/errors/const.go`), plus TIMEOUT and NETWORK for calls that got
 * no answer at all.
 */
export type HarborErrorCode =
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNAUTHORIZED'
  | 'BAD_REQUEST'
  | 'FORBIDDEN'
  | 'METHOD_NOT_ALLOWED'
  | 'TOO_MANY_REQUEST'
  | 'PRECONDITION'
  | 'UNKNOWN'
  | 'TIMEOUT'
  | 'NETWORK'
  | (string & {});

const CODE_BY_STATUS: Record<number, HarborErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  412: 'PRECONDITION',
  429: 'TOO_MANY_REQUEST',
};

/** A failed Harbor API call, carrying Harbor's `{errors:[{code,message}]}` when it sent one. */
export class HarborError extends Error {
  /** The first error's code, or one derived from the HTTP status. */
  readonly code: HarborErrorCode;

  constructor(
    readonly method: string,
    readonly path: string,
    /** HTTP status; 0 when no answer came. */
    readonly status: number,
    readonly errors: HarborErrorItem[],
    options?: { cause?: unknown },
  ) {
    const first = errors[0];
    super(
      `${method} ${path}: ${status === 0 ? '' : `HTTP ${status} `}${first ? `${first.code}: ${first.message}` : 'no error details'}`,
      options,
    );
    this.name = 'HarborError';
    this.code = first?.code ?? CODE_BY_STATUS[status] ?? 'UNKNOWN';
  }

  /** Whether Harbor said the thing does not exist. */
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** Reads an error body. Harbor's nginx answers 502/503/504 with HTML, which yields nothing. */
export function readErrorItems(text: string): HarborErrorItem[] {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors.flatMap((item: unknown) => {
      if (typeof item !== 'object' || item === null) return [];
      const { code, message } = item as Record<string, unknown>;
      return typeof code === 'string' ? [{ code, message: typeof message === 'string' ? message : '' }] : [];
    });
  } catch {
    return [];
  }
}
