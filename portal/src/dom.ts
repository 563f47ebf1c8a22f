/** Just enough DOM building for a page of forms, tables and cards, without a framework. */
export type Child = Node | string | number | null | undefined | false;

type Props<K extends keyof HTMLElementTagNameMap> = Partial<Omit<HTMLElementTagNameMap[K], 'style'>> & {
  /** Attributes rather than properties: data-*, aria-*, and <progress value> left out for "unknown". */
  attrs?: Record<string, string | number | undefined>;
};

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props<K> = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const { attrs, ...properties } = props;
  const element = Object.assign(document.createElement(tag), properties);
  for (const [name, value] of Object.entries(attrs ?? {}))
    if (value !== undefined) element.setAttribute(name, String(value));
  for (const child of children.flat())
    if (child !== null && child !== undefined && child !== false)
      element.append(typeof child === 'number' ? String(child) : child);
  return element;
}
