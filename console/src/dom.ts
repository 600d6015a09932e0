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
 * screen reader announces it again; errors are alerts. `show` gives the message, with an id
 * for the field it is about (see `markInvalid`).
 */
export function messageArea () {
  const element = h('div', { class: 'messages', 'aria-live': 'polite' })
  return {
    element,
    show (text: string, kind: 'ok' | 'error' = 'ok'): HTMLElement {
      const message = h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status', id: uniqueId('message') }, text)
      element.replaceChildren(message)
      return message
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

/**
 * Marks `button` busy while `work` runs, and ignores its activations (a click, Enter in its
 * form) meanwhile; with `screen`, every button of the screen, so that no other action starts
 * on a screen about to be drawn again. Not `disabled`: Chromium moves the focus off a disabled
 * button to <body>, and a closing modal dialog cannot give it back, so a keyboard user would
 * start over.
 */
export async function whileBusy<T> (button: HTMLButtonElement, work: () => Promise<T>, screen?: HTMLElement): Promise<T> {
  const scope = screen ?? button
  const buttons = screen === undefined ? [button] : Array.from(screen.querySelectorAll('button'))
  // Cancelling the click also cancels the form submission it would start.
  const ignore = (event: Event) => {
    if (!(event.target instanceof Element) || event.target.closest('button') === null) return
    event.preventDefault()
    event.stopImmediatePropagation()
  }
  for (const each of buttons) each.setAttribute('aria-disabled', 'true')
  scope.addEventListener('click', ignore, true)
  try {
    return await work()
  } finally {
    for (const each of buttons) each.removeAttribute('aria-disabled')
    scope.removeEventListener('click', ignore, true)
  }
}

/** What each control marked invalid was described by before. */
const hints = new WeakMap<HTMLElement, string>()

/**
 * `control` refused: invalid, and described by `message` (before its hint), until its value
 * changes. A screen reader reads both when the control gets the focus back.
 */
export function markInvalid (control: HTMLInputElement, message: HTMLElement): void {
  const hint = hints.get(control) ?? control.getAttribute('aria-describedby') ?? ''
  hints.set(control, hint)
  control.setAttribute('aria-invalid', 'true')
  control.setAttribute('aria-describedby', `${message.id} ${hint}`.trim())
  control.addEventListener('input', () => {
    control.removeAttribute('aria-invalid')
    if (hint === '') control.removeAttribute('aria-describedby')
    else control.setAttribute('aria-describedby', hint)
  }, { once: true })
}
