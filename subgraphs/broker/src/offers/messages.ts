import type { Ivoa } from '@srcnet/execution-step-schema';

/**
 * Messages in the IVOA Message Templates style. The template keeps the placeholders and `message`
 * has them filled in, so that a client can show either (the reference fills only the template).
 */
export function message(
  level: Ivoa.MessageItem['level'],
  kind: string,
  template: string,
  values: Record<string, string | number> = {},
  time: Date = new Date(),
): Ivoa.MessageItem {
  const text = template.replace(/\$\{(\w+)\}/g, (_, name: string) => String(values[name] ?? `\${${name}}`));
  return {
    kind,
    time: time.toISOString(),
    level,
    template,
    values: Object.fromEntries(Object.entries(values).map(([key, value]) => [key, String(value)])),
    message: text,
  };
}
