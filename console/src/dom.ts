// Elements from code, never from HTML strings: the page's policy (Trusted Types) refuses those, so no text can become markup.
export type Child = Node | string | number | null | undefined | false
type Handler = (event: Event) => void
export type Attributes = Record<string, string | boolean | undefined | Handler>

/** `on…` attributes become listeners, `true` a bare attribute; `false` and `undefined` are left out. */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attributes: Attributes = {}, ...children: Array<Child | Child[]>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (typeof value === 'function') element.addEventListener(name.slice(2), value)
    else if (value === true) element.setAttribute(name, '')
    else if (typeof value === 'string') element.setAttribute(name, value)
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    element.append(typeof child === 'number' ? String(child) : child)
  }
  return element
}

let counter = 0
/** An id for tying a label or a hint to its control. */
export function uniqueId (prefix: string): string {
  counter += 1
  return `${prefix}-${counter}`
}

/** A label above its control, and an optional hint the control is described by. */
export function field (label: string, control: HTMLInputElement | HTMLSelectElement, hint?: Child | Child[]): HTMLElement {
  control.id ||= uniqueId('field')
  const hintElement = hint === undefined ? null : h('p', { class: 'hint', id: `${control.id}-hint` }, hint)
  if (hintElement !== null) control.setAttribute('aria-describedby', hintElement.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement)
}

export function option (value: string, label: string, selected: boolean): HTMLOptionElement {
  return h('option', { value, selected }, label)
}

/**
 * Where a screen tells the outcome of an action. A message is a new node each time, so a
 * screen reader announces it again; errors are alerts.
 */
export function messageArea () {
  const element = h('div', { class: 'messages', 'aria-live': 'polite' })
  return {
    element,
    show (text: string, kind: 'ok' | 'error' = 'ok'): void {
      element.replaceChildren(h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, text))
    },
    clear (): void {
      element.replaceChildren()
    }
  }
}

export type MessageArea = ReturnType<typeof messageArea>

/** A table that reads as labelled cards on a phone (each cell repeats its column's name, see style.css). */
export function table (caption: string, columns: string[], rows: Child[][]): HTMLElement {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(column => h('th', { scope: 'col' }, column)))),
    h('tbody', {}, rows.map(row => h('tr', {}, row.map((cell, i) => h('td', { 'data-label': columns[i] ?? '' }, cell)))))
  ))
}
