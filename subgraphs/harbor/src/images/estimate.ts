/**
 * How long a local copy takes: nothing when the image is local; otherwise its size over the
 * speed that recent copies from the same registry achieved, or, until there are enough of them,
 * over the configured bandwidth plus a fixed overhead.
 */
import type { HarborWorkerConfig } from '../config.ts';
import type { Db } from '../store/store.ts';

const HISTORY_WINDOW = 20;

export interface Observation {
  registry: string;
  bytes: number;
  local: boolean;
  durationSeconds: number;
  outcome: 'ok' | 'failed';
  startedAt: string;
}

export class CopyEstimator {
  constructor(
    private readonly db: Db,
    private readonly config: HarborWorkerConfig['estimate'],
  ) {}

  async record(observation: Observation): Promise<void> {
    await this.db
      .insertInto('observations')
      .values({
        registry: observation.registry,
        bytes: observation.bytes,
        local: observation.local ? 1 : 0,
        duration_seconds: observation.durationSeconds,
        outcome: observation.outcome,
        started_at: observation.startedAt,
      })
      .execute();
  }

  async seconds(input: { local: boolean; sizeBytes: number | undefined; registry: string }): Promise<number> {
    if (input.local) return 0;
    const bytes = input.sizeBytes ?? this.config.unknownSizeBytes;
    const recent = await this.db
      .selectFrom('observations')
      .select(['bytes', 'duration_seconds'])
      .where('registry', '=', input.registry)
      .where('local', '=', 0)
      .where('outcome', '=', 'ok')
      .orderBy('id', 'desc')
      .limit(HISTORY_WINDOW)
      .execute();
    const totalBytes = recent.reduce((sum, row) => sum + row.bytes, 0);
    const totalSeconds = recent.reduce((sum, row) => sum + row.duration_seconds, 0);
    // Observed durations include the fixed costs, so the observed speed already accounts for them.
    if (recent.length >= this.config.minHistory && totalBytes > 0 && totalSeconds > 0)
      return round(bytes / (totalBytes / totalSeconds));
    return round(this.config.overheadSeconds + bytes / this.config.bandwidthBytesPerSecond);
  }
}

const round = (seconds: number) => Math.round(seconds * 100) / 100;
