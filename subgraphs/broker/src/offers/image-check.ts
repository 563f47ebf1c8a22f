import { randomUUID } from 'node:crypto';
import { signedHeaders } from '@srcnet/service-kit';
import type { ImageEstimate } from '../../../harbor/src/images/status.ts';

/**
 * What the Harbor worker says of a step's image when offers are made (docs/harbor.md,
 * `POST /estimates`): where it is, how big, whether the site's Harbor has it, and how long a copy
 * would take. `refused`: the image cannot be used (missing, or another digest), so no offer can be
 * kept. `unknown`: the worker could not say in time; offers fall back on the history alone.
 */
export type ImageCheck =
  | ({ outcome: 'found' } & Omit<ImageEstimate, 'problem'>)
  | { outcome: 'refused'; problem: string }
  | { outcome: 'unknown'; reason: string };

export type CheckImage = (image: { locations: string[]; digest?: string }) => Promise<ImageCheck>;

export interface HarborCheckOptions {
  /** The Harbor worker's base URL (HARBOR_WORKER_URL). */
  url: string;
  /** Signs the request as the broker signs its commands. */
  secret: string;
  /** An offer waits at most this long for the answer. */
  timeoutMs: number;
}

export function harborImageCheck(options: HarborCheckOptions): CheckImage {
  const target = `${options.url.replace(/\/$/, '')}/estimates`;
  return async (image) => {
    const body = JSON.stringify({ image });
    let response: Response;
    try {
      response = await fetch(target, {
        method: 'POST',
        headers: signedHeaders(options.secret, body, randomUUID()),
        body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const reason =
        (error as Error).name === 'TimeoutError'
          ? `no answer within ${options.timeoutMs / 1000} s`
          : `unreachable (${(error as Error).message})`;
      return { outcome: 'unknown', reason: `the Harbor worker at ${target} was ${reason}` };
    }
    const text = await response.text().catch(() => '');
    let answer: Partial<ImageEstimate> & { error?: string };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      answer = {};
    }
    if (response.status === 422 && typeof answer.error === 'string')
      return { outcome: 'refused', problem: answer.error };
    if (!response.ok || typeof answer.availableLocally !== 'boolean') {
      return {
        outcome: 'unknown',
        reason: `the Harbor worker at ${target} answered ${response.status}: ${(answer.error ?? text).slice(0, 200)}`,
      };
    }
    return {
      outcome: 'found',
      reference: answer.reference ?? image.locations[0]!,
      digest: answer.digest ?? null,
      sizeBytes: answer.sizeBytes ?? null,
      availableLocally: answer.availableLocally,
      localReference: answer.localReference ?? null,
      estimatedCopySeconds: answer.estimatedCopySeconds ?? null,
    };
  };
}
