/**
 * ISO-8601 durations and intervals as the broker needs them. Years and months have no fixed
 * length, so a duration that uses them cannot be booked and is refused rather than guessed.
 */

const DURATION =
  /^(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) return undefined;
  const [, sign, years, months, weeks, days, hours, minutes, seconds] = match;
  if (years || months) return undefined;
  const ms =
    (Number(weeks ?? 0) * 7 * 86400 +
      Number(days ?? 0) * 86400 +
      Number(hours ?? 0) * 3600 +
      Number(minutes ?? 0) * 60 +
      Number(seconds ?? 0)) *
    1000;
  return sign ? -ms : ms;
}

export function formatDuration(ms: number): string {
  let seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds === 0) return 'PT0S';
  const days = Math.floor(seconds / 86400);
  seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds ? `${seconds}S` : ''}`;
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
}

/** A date or date-time; without a zone it is read as UTC. */
function parseInstant(text: string): number | undefined {
  const withZone = /T.*(Z|[+-]\d{2}:?\d{2})$/.test(text)
    ? text
    : /T/.test(text)
      ? `${text}Z`
      : `${text}T00:00:00Z`;
  const ms = Date.parse(withZone);
  return Number.isNaN(ms) ? undefined : ms;
}

/** `start/end`, `start/duration` or `duration/end`, as epoch ms. */
export function parseIntervalStart(text: string): { start: number; end: number } | undefined {
  const [left, right, extra] = text.split('/');
  if (!left || !right || extra !== undefined) return undefined;
  if (left.startsWith('P')) {
    const duration = parseDuration(left);
    const end = parseInstant(right);
    return duration === undefined || end === undefined ? undefined : { start: end - duration, end };
  }
  const start = parseInstant(left);
  if (start === undefined) return undefined;
  const end = right.startsWith('P') ? (parseDuration(right) ?? Number.NaN) + start : parseInstant(right);
  return end === undefined || Number.isNaN(end) || end < start ? undefined : { start, end };
}
