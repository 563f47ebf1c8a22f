/** How times, durations and sizes read on the page. */

/** The start of an ISO-8601 instant or interval (`start/duration`), as a Date. */
export function startOf(value: string | null | undefined): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value.split('/')[0]!);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export const clock = (date: Date) =>
  date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false,
  });

/** "in 32 s", "5 min ago". */
export function relative(date: Date, now = Date.now()): string {
  const seconds = Math.round((date.getTime() - now) / 1000);
  const size = Math.abs(seconds);
  const amount =
    size < 90 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min` : `${Math.round(size / 3600)} h`;
  return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
}

/** An ISO-8601 duration (PT1H30M, P1DT2H, PT32S) in words; the text itself when it is not one. */
export function duration(value: string | null | undefined): string {
  if (!value) return '—';
  const match = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?$/.exec(value);
  if (!match) return value;
  const [, d, hours, minutes, seconds] = match;
  const parts = [
    d && `${d} d`,
    hours && `${hours} h`,
    minutes && `${minutes} min`,
    seconds && `${Number(seconds)} s`,
  ];
  return parts.filter(Boolean).join(' ') || '0 s';
}

export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size < 10 && unit ? size.toFixed(1) : Math.round(size)} ${units[unit]}`;
}

export const range = (value: { min: number | null; max: number | null } | null | undefined, unit = '') =>
  !value || (value.min === null && value.max === null)
    ? '—'
    : value.max !== null && value.max !== value.min
      ? `${value.min ?? 0}–${value.max}${unit}`
      : `${value.min ?? value.max}${unit}`;

type Unit = 'second' | 'minute' | 'hour';

/**
 * A wait rounded to what matters at its size: seconds under a minute, minutes under two hours,
 * then hours. The unit follows the rounded value, so 59.6 s reads "1 minute", not "60 seconds".
 */
function rounded(seconds: number): { amount: number; unit: Unit } {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return { amount: whole, unit: 'second' };
  const minutes = Math.round(whole / 60);
  if (minutes < 120) return { amount: minutes, unit: 'minute' };
  return { amount: Math.round(whole / 3600), unit: 'hour' };
}

const words = ({ amount, unit }: { amount: number; unit: Unit }) =>
  `${amount} ${unit}${amount === 1 ? '' : 's'}`;

/** "40 seconds", "4 minutes", "3 hours". */
export const waitInWords = (seconds: number) => words(rounded(seconds));

/** "about 4 minutes, 9 at most": a median and a bound, the bound's unit left out when the same. */
export function medianAndBound(medianSeconds: number, boundSeconds: number): string {
  const median = rounded(medianSeconds);
  const bound = rounded(Math.max(boundSeconds, medianSeconds));
  if (median.amount === bound.amount && median.unit === bound.unit) return `about ${words(median)}`;
  return `about ${words(median)}, ${median.unit === bound.unit ? bound.amount : words(bound)} at most`;
}

/**
 * When a step should be ready, in words, from its median and bound ready times:
 * "ready in about 4 minutes, 9 at most"; "should be ready now, 2 minutes at most" once the median
 * has passed; "should be ready by now" once the bound has too.
 */
export function readyIn(medianAt: Date, boundAt: Date, now = Date.now()): string {
  const median = (medianAt.getTime() - now) / 1000;
  const bound = Math.max(median, (boundAt.getTime() - now) / 1000);
  if (rounded(bound).amount === 0) return 'should be ready by now';
  if (rounded(median).amount === 0) return `should be ready now, ${waitInWords(bound)} at most`;
  return `ready in ${medianAndBound(median, bound)}`;
}
