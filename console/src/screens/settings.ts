// Token lifetimes: the service's bounds checked in the form, applied at once on saving.
import { problemOf, type Lifetimes } from '../api.js'
import type { Context, Screen } from '../context.js'
import { field, h, messageArea, whileBusy } from '../dom.js'
import { duration } from '../format.js'
import { lifetimeBounds, lifetimeOrderProblems, type LifetimeName } from '../../../src/services/admin/lifetime-bounds.js'

const labels: Record<LifetimeName, string> = {
  accessTokenTtlSeconds: 'Access token lifetime (seconds)',
  refreshTokenIdleTtlSeconds: 'Session idle lifetime (seconds)',
  sessionAbsoluteTtlSeconds: 'Session absolute lifetime (seconds)'
}

const names = Object.keys(lifetimeBounds) as LifetimeName[]

/** Why `values` cannot be saved, per field: the API's own rules (docs/administration.md, Roles and administration). */
export function problemsOf (values: Record<LifetimeName, string>): Partial<Record<LifetimeName, string>> {
  const problems: Partial<Record<LifetimeName, string>> = {}
  for (const name of names) {
    const { minimum, maximum } = lifetimeBounds[name]
    const value = Number(values[name])
    if (values[name].trim() === '' || !Number.isInteger(value)) problems[name] = 'Enter a whole number of seconds.'
    else if (value < minimum || value > maximum) problems[name] = `Must be between ${minimum} (${duration(minimum)}) and ${maximum} (${duration(maximum)}).`
  }
  if (problems.refreshTokenIdleTtlSeconds !== undefined) return problems
  const lifetimes = Object.fromEntries(names.map(name => [name, Number(values[name])])) as Lifetimes
  for (const { lifetime, rule } of lifetimeOrderProblems(lifetimes)) problems[lifetime] ??= `Must be ${rule}.`
  return problems
}

export async function settingsScreen ({ api, endsScreen }: Context): Promise<Screen> {
  let current: Lifetimes = await api.settings()
  const messages = messageArea()
  const inputs = {} as Record<LifetimeName, HTMLInputElement>
  const errors = {} as Record<LifetimeName, HTMLElement>
  const fields = names.map(name => {
    const { minimum, maximum } = lifetimeBounds[name]
    const input = h('input', { id: name, name, type: 'number', inputmode: 'numeric', required: true, min: String(minimum), max: String(maximum), step: '1', value: String(current[name]) })
    const readable = h('span', { class: 'readable' }, duration(current[name]))
    input.addEventListener('input', () => { readable.textContent = duration(Number(input.value)) })
    inputs[name] = input
    const error = h('p', { class: 'field-error', id: `${name}-error` })
    errors[name] = error
    const wrapper = field(labels[name], input, [readable, ` · from ${duration(minimum)} to ${duration(maximum)}`])
    wrapper.append(error)
    return wrapper
  })
  const save = h('button', { type: 'submit' }, 'Save')
  const form = h('form', { novalidate: true, 'aria-label': 'Token lifetimes' }, fields, save)

  form.addEventListener('submit', event => {
    event.preventDefault()
    messages.clear()
    const values = Object.fromEntries(names.map(name => [name, inputs[name].value])) as Record<LifetimeName, string>
    const problems = problemsOf(values)
    for (const name of names) {
      const problem = problems[name]
      errors[name].textContent = problem ?? ''
      if (problem === undefined) {
        inputs[name].removeAttribute('aria-invalid')
        inputs[name].setAttribute('aria-describedby', `${name}-hint`)
      } else {
        inputs[name].setAttribute('aria-invalid', 'true')
        inputs[name].setAttribute('aria-describedby', `${name}-error ${name}-hint`)
      }
    }
    const firstProblem = names.find(name => problems[name] !== undefined)
    if (firstProblem !== undefined) {
      messages.show('Nothing saved: correct the marked fields.', 'error')
      inputs[firstProblem].focus()
      return
    }
    const changes: Partial<Lifetimes> = {}
    for (const name of names) if (Number(values[name]) !== current[name]) changes[name] = Number(values[name])
    if (Object.keys(changes).length === 0) {
      messages.show('Nothing changed.')
      return
    }
    // Read-only while it saves: a value typed meanwhile was replaced by the saved one, under
    // "Saved." Not disabled, which would take the focus away.
    const editable = (yes: boolean) => { for (const name of names) inputs[name].readOnly = !yes }
    editable(false)
    whileBusy(save, () => api.updateSettings(changes)).finally(() => { editable(true) }).then(updated => {
      current = updated
      for (const name of names) inputs[name].value = String(updated[name])
      messages.show('Saved. Tokens issued from now on use these lifetimes, on every instance within seconds.')
    }, error => {
      if (!endsScreen(error)) messages.show(problemOf(error), 'error')
    })
  })

  return {
    title: 'Settings',
    element: h('section', {},
      h('h1', { tabindex: '-1' }, 'Settings'),
      h('p', {}, 'Token lifetimes apply to tokens issued after a change, with no restart. A session dies when it has been unused for the idle lifetime, or at the absolute lifetime after sign-in, whichever comes first.'),
      messages.element,
      form
    )
  }
}
