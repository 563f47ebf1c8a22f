import type { SessionStatus } from './types.ts';

/**
 * Skaha's status strings changed over releases (`Succeeded` became `Completed` in 2025.1; before
 * Sept 2025 failures read `Failed (DeadlineExceeded)`; old deployments say `Error`), so callers
 * branch on the normalised value and keep the raw one for display.
 */
export function normaliseStatus(raw: string): SessionStatus {
  const text = raw.trim().toLowerCase();
  switch (text) {
    case 'pending':
      return 'Pending';
    case 'running':
      return 'Running';
    case 'completed':
    case 'succeeded':
      return 'Completed';
    case 'failed':
    case 'error':
      return 'Failed';
    case 'terminating':
      return 'Terminating';
  }
  if (text.startsWith('failed ') || text.startsWith('failed(')) return 'Failed';
  return 'Unknown';
}

/** A session in one of these will not change again except by being deleted. */
export function isFinished(status: SessionStatus): boolean {
  return status === 'Completed' || status === 'Failed';
}
