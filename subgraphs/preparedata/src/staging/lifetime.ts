/**
 * How long staged data must live: until the end of the step's available window plus its release
 * time (docs/preparedata-callbacks.md §3). Read from the step's IVOA schedule.
 */
import type { Ivoa } from '@srcnet/execution-step-schema';

const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** ISO-8601 duration in ms; years and months have no fixed length and are refused. */
export function durationMs(text: string, where: string): number {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T'))
    throw new RangeError(
      `${where} must be an ISO-8601 duration of weeks, days, hours, minutes or seconds (got ${text})`,
    );
  const [, weeks, days, hours, minutes, seconds] = match;
  return (
    (Number(weeks ?? 0) * 604_800 +
      Number(days ?? 0) * 86_400 +
      Number(hours ?? 0) * 3600 +
      Number(minutes ?? 0) * 60 +
      Number(seconds ?? 0)) *
    1000
  );
}

/** An instant, or the start of an interval `start/duration` or `start/end` (the broker writes the former). */
function instantMs(text: string, where: string): number {
  const at = Date.parse(text.split('/')[0]!);
  if (Number.isNaN(at))
    throw new RangeError(`${where} must be an ISO-8601 instant or interval (got ${text})`);
  return at;
}

export interface DataWindow {
  /** End of the available window, epoch ms. */
  windowEnd: number;
  releaseMs: number;
}

type Scheduled = { schedule?: Ivoa.Schedule | undefined };

/** The window of a component, falling back to the step's own schedule. */
export function dataWindow(step: Scheduled, component?: Scheduled): DataWindow {
  const schedule = component?.schedule?.available ? component.schedule : step.schedule;
  const available = schedule?.available;
  if (!available?.start || !available.duration)
    throw new RangeError('schedule.available needs a start and a duration to size the data lifetime');
  const windowEnd =
    instantMs(available.start, 'schedule.available.start') +
    durationMs(available.duration, 'schedule.available.duration');
  const release = schedule?.releasing?.duration;
  return { windowEnd, releaseMs: release ? durationMs(release, 'schedule.releasing.duration') : 0 };
}

/** Whole seconds from now to the end of the window plus release time; at least 1. */
export function lifetimeSeconds(window: DataWindow, now = Date.now()): number {
  return Math.max(1, Math.ceil((window.windowEnd + window.releaseMs - now) / 1000));
}
