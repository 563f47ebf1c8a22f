/**
 * An image's standing without copying anything: what the broker asks when it makes offers
 * (`POST /estimates`) and the portal asks through `Query.containerImage`. Answers are reused
 * for a short while, since offers for one request ask about the same image several times.
 */
import type { CopyEstimator } from './estimate.ts';
import type { ImageLocator, ImageSpec } from './locator.ts';

export interface ImageEstimate {
  reference: string;
  digest: string | null;
  sizeBytes: number | null;
  availableLocally: boolean;
  localReference: string | null;
  estimatedCopySeconds: number | null;
  /** Set when the image cannot be used: not found, or the wrong digest. */
  problem?: string;
}

export class ImageStatusService {
  private readonly cache = new Map<string, { at: number; value: Promise<ImageEstimate> }>();

  constructor(
    private readonly locator: ImageLocator,
    private readonly estimator: CopyEstimator,
    private readonly cacheMs: number,
  ) {}

  estimate(spec: ImageSpec): Promise<ImageEstimate> {
    const key = JSON.stringify([spec.locations, spec.digest ?? null]);
    const now = Date.now();
    const cached = this.cache.get(key);
    if (cached && now - cached.at < this.cacheMs) return cached.value;
    for (const [k, entry] of this.cache) if (now - entry.at >= this.cacheMs) this.cache.delete(k);
    const value = this.compute(spec);
    this.cache.set(key, { at: now, value });
    // A failed lookup (Harbor down) is not worth remembering.
    value.catch(() => this.cache.delete(key));
    return value;
  }

  /** Forgets every answer: a copy just finished or failed. */
  invalidate(): void {
    this.cache.clear();
  }

  private async compute(spec: ImageSpec): Promise<ImageEstimate> {
    const lookup = await this.locator.locate(spec);
    if (lookup.kind === 'unavailable')
      return {
        reference: lookup.reference,
        digest: spec.digest ?? null,
        sizeBytes: null,
        availableLocally: false,
        localReference: null,
        estimatedCopySeconds: null,
        problem: lookup.message,
      };
    const local = lookup.kind === 'local';
    return {
      reference: lookup.location,
      digest: lookup.digest,
      sizeBytes: lookup.sizeBytes ?? null,
      availableLocally: local,
      localReference: local
        ? lookup.localReference
        : this.locator.localReference(lookup.target.repository, lookup.digest),
      estimatedCopySeconds: await this.estimator.seconds({
        local,
        sizeBytes: lookup.sizeBytes,
        registry: lookup.registry,
      }),
    };
  }
}
