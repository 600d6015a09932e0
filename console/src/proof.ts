// Proving it is the admin, one method at a time of those the service listed: a password, a code, or a passkey the browser asks for.
import { isAuthError, type PasskeyRequestOptionsAnswer, type ReauthenticationMethod } from '../../packages/client/src/index.js'
import { field, h, markInvalid, option } from './dom.js'

export const methodLabels: Record<ReauthenticationMethod, string> = {
  password: 'Password',
  totp: 'Code from the authenticator app',
  recovery_code: 'Recovery code',
  webauthn: 'Passkey'
}

/** What a refused passkey tells the admin, or null when the error is not about one. */
export function passkeyProblem (error: unknown): string | null {
  if (isAuthError(error) && error.code.startsWith('PASSKEY_')) return `The passkey was not accepted: ${error.message}`
  // The browser's own refusal: the admin dismissed its prompt, or it timed out.
  if (error instanceof DOMException && error.name === 'NotAllowedError') return 'No passkey was used. Try again, or choose another method.'
  return null
}

/** `navigator.credentials.get()` with the service's options: the assertion, as the service takes it. */
export async function passkeyAssertion (options: PasskeyRequestOptionsAnswer): Promise<PublicKeyCredentialJSON> {
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON) })
  if (!(credential instanceof PublicKeyCredential)) throw new DOMException('No passkey was chosen.', 'NotAllowedError')
  return credential.toJSON()
}

/**
 * A choice of method (shown when there are several) and the field its proof needs: none for a
 * passkey, whose button asks the browser. `submit` is the form's button, relabelled to match.
 * Choosing a method moves no focus (WCAG 3.2.2): arrowing through the options would leave them.
 */
export function methodChoice<Method extends ReauthenticationMethod> (methods: Method[], submit: HTMLButtonElement, label: string) {
  const kind = h('select', { name: 'method' }, methods.map((method, i) => option(method, methodLabels[method], i === 0)))
  const proofField = h('div', {})
  let input: HTMLInputElement | null = null
  const submitLabel = submit.textContent

  function show (method: Method): void {
    submit.textContent = method === 'webauthn' ? 'Use a passkey' : submitLabel
    if (method === 'webauthn') {
      input = null
      proofField.replaceChildren(h('p', { class: 'hint' }, 'Your browser will ask for one of your passkeys.'))
      return
    }
    input = method === 'password'
      ? h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
      : h('input', { name: 'code', autocomplete: method === 'totp' ? 'one-time-code' : 'off', inputmode: method === 'totp' ? 'numeric' : 'text', required: true, maxlength: '64', spellcheck: 'false' })
    proofField.replaceChildren(field(methodLabels[method], input))
  }

  show(methods[0] as Method)
  return {
    /** The controls, for the form. */
    elements: [methods.length > 1 ? field(label, kind) : null, proofField],
    method: () => kind.value as Method,
    /** What was typed: a code trimmed, a password as it is. */
    value: () => kind.value === 'password' ? input?.value ?? '' : (input?.value ?? '').trim(),
    onChange (listener: () => void): void {
      kind.addEventListener('change', () => { show(kind.value as Method); listener() })
    },
    /** Empties the field for another try, marked as refused by `message`, and focuses it. */
    retry (message: HTMLElement): void {
      if (input === null) return
      markInvalid(input, message)
      input.value = ''
      input.focus()
    },
    /** The field, or the passkey's button when there is none: something that says the step is there. */
    focus: () => { (input ?? submit).focus() }
  }
}
