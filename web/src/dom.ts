// A few lines of DOM building, so the pages need no framework.

type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined | ((ev: Event) => void);

/** h builds an element: "on…" attributes become listeners, value/checked are set as properties. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, AttrValue> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === "value" && typeof v === "string") {
      (el as HTMLInputElement).value = v;
    } else if (k === "checked") {
      (el as HTMLInputElement).checked = Boolean(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else if (v !== false && v !== null && v !== undefined) {
      el.setAttribute(k, String(v));
    }
  }
  append(el, ...children);
  return el;
}

/** append adds children, skipping empty ones. */
export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
}

/** replace swaps an element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

let nextID = 0;

/** uid makes element ids for label/for and aria-describedby pairs. */
export function uid(prefix: string): string {
  nextID += 1;
  return `${prefix}-${nextID}`;
}

/** field is a labelled control with an optional hint, tied together for screen readers. */
export function field(label: string, control: HTMLElement, hint?: string | Node): HTMLElement {
  const id = control.id || uid("f");
  control.id = id;
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), control);
  if (hint) {
    const hid = uid("hint");
    control.setAttribute("aria-describedby", hid);
    wrap.append(h("p", { class: "hint", id: hid }, hint));
  }
  return wrap;
}
