/** One row of `GET /session/{id}?view=events`. */
export interface SessionEvent {
  type: string;
  reason: string;
  message: string;
  firstTime: string;
  lastTime: string;
}

const COLUMNS: Record<string, keyof SessionEvent> = {
  TYPE: 'type',
  REASON: 'reason',
  MESSAGE: 'message',
  'FIRST-TIME': 'firstTime',
  'LAST-TIME': 'lastTime',
};

/**
 * Reads the kubectl custom-columns table Skaha returns for `view=events`. Columns are cut at the
 * header's word positions because messages contain spaces; `<none>` means no events.
 */
export function parseEventsTable(text: string): SessionEvent[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const header = lines[0];
  if (header === undefined || header.trim() === '<none>') return [];
  const starts = [...header.matchAll(/\S+/g)].map((match) => ({ name: match[0], at: match.index }));
  return lines.slice(1).map((line) => {
    const event: SessionEvent = { type: '', reason: '', message: '', firstTime: '', lastTime: '' };
    starts.forEach((column, index) => {
      const key = COLUMNS[column.name];
      const end = starts[index + 1]?.at ?? line.length;
      if (key) event[key] = line.slice(column.at, end).trim();
    });
    return event;
  });
}
