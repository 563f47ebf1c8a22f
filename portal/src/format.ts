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
