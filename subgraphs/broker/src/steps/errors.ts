import type { ValidationIssue } from '@srcnet/execution-step-schema';
import { nestingProblem } from '@srcnet/service-kit';

/**
 * Errors a client can act on. Each maps to one HTTP status and one GraphQL error code, and says
 * what is wrong in words a portal can show.
 */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 403 | 404 | 409 | 413,
    readonly code: string,
    readonly issues: ValidationIssue[] = [],
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export const notFound = (what: string, id: string) => new ClientError(`no ${what} ${id}`, 404, 'NOT_FOUND');

export const invalidDocument = (issues: ValidationIssue[]) =>
  new ClientError(
    `the document is not valid: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`,
    400,
    'BAD_USER_INPUT',
    issues,
  );

/** Refuses a document nested deeper than MAX_NESTING, naming where. */
export function checkNesting(document: unknown): void {
  const problem = nestingProblem(document);
  if (problem)
    throw new ClientError(`the document ${problem.message} at ${problem.path}`, 400, 'BAD_USER_INPUT', [
      { ...problem, rule: 'max-depth' },
    ]);
}
