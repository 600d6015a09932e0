// Fresh authentication in the console: a sensitive change refused with REAUTHENTICATION_REQUIRED asks the admin to prove it is them (README, Second factor).
import { isAuthError, type AuthClient, type ReauthenticateInput, type ReauthenticationMethod } from '../../packages/client/src/index.js'
import { problemOf } from './api.js'
import { field, h, messageArea, option, uniqueId } from './dom.js'

const labels: Record<ReauthenticationMethod, string> = {
  password: 'Password',
  totp: 'Code from the authenticator app',
  recovery_code: 'Recovery code',
  webauthn: 'Passkey'
}

/** What a refused proof tells the admin; the dialog stays open for another try. */
function refusalOf (error: unknown): string {
  if (isAuthError(error, 'INVALID_CURRENT_PASSWORD')) return 'That password is not right. Try again.'
  if (isAuthError(error, 'MFA_CODE_INVALID')) return 'That code is not right. Try again.'
  if (isAuthError(error) && error.code.startsWith('PASSKEY_')) return `The passkey was not accepted: ${error.message}`
  // The browser's own refusal: the admin dismissed its prompt, or it timed out.
  if (error instanceof DOMException && error.name === 'NotAllowedError') return 'No passkey was used. Try again, or choose another method.'
  return problemOf(error)
}

/** An assertion of one of the admin's passkeys, over a challenge bound to this session. */
async function passkeyProof (client: AuthClient): Promise<ReauthenticateInput> {
  const options = await client.reauthenticationPasskeyOptions()
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON) })
  if (!(credential instanceof PublicKeyCredential)) throw new DOMException('No passkey was chosen.', 'NotAllowedError')
  return { webauthn: credential.toJSON() }
}

/**
 * The modal dialog: the methods the service listed, one proof at a time. Resolves true once
 * the service took a proof, false when the admin cancels (the button, Escape) or the session ends.
 */
function ask (client: AuthClient, methods: ReauthenticationMethod[]): { answer: Promise<boolean>, abandon: () => void } {
  const messages = messageArea()
  const titleId = uniqueId('reauthenticate')
  const kind = h('select', { name: 'reauthentication-method' }, methods.map((method, i) => option(method, labels[method], i === 0)))
  const proofField = h('div', {})
  const submit = h('button', { type: 'submit' }, 'Confirm')
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel')
  const form = h('form', { 'aria-labelledby': titleId },
    h('p', {}, 'This is a sensitive change, and you have not confirmed it is you lately. Nothing is changed until you do.'),
    methods.length > 1 ? field('Confirm with', kind) : null,
    proofField,
    h('div', { class: 'actions' }, submit, cancel)
  )
  const dialog = h('dialog', { class: 'reauthenticate', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Confirm it is you'),
    messages.element,
    form
  )
  let input: HTMLInputElement | null = null
  const focusProof = () => { input?.focus() }

  /** One field for the chosen method: the password, a code, or none for a passkey (the browser asks). */
  function showMethod (method: ReauthenticationMethod): void {
    submit.textContent = method === 'webauthn' ? 'Use a passkey' : 'Confirm'
    if (method === 'webauthn') {
      input = null
      proofField.replaceChildren(h('p', { class: 'hint' }, 'Your browser will ask for one of your passkeys.'))
      return
    }
    input = method === 'password'
      ? h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
      : h('input', { name: 'code', autocomplete: method === 'totp' ? 'one-time-code' : 'off', inputmode: method === 'totp' ? 'numeric' : 'text', required: true, maxlength: '64', spellcheck: 'false' })
    proofField.replaceChildren(field(method === 'password' ? 'Password' : labels[method], input))
  }

  function proof (method: ReauthenticationMethod): Promise<ReauthenticateInput> | ReauthenticateInput {
    const value = input?.value ?? ''
    if (method === 'password') return { password: value }
    if (method === 'totp') return { code: value.trim() }
    if (method === 'recovery_code') return { recoveryCode: value.trim() }
    return passkeyProof(client)
  }

  let confirmed = false
  const answer = new Promise<boolean>(resolve => {
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(confirmed)
    })
  })
  kind.addEventListener('change', () => {
    messages.clear()
    showMethod(kind.value as ReauthenticationMethod)
    focusProof()
  })
  cancel.addEventListener('click', () => { dialog.close() })
  form.addEventListener('submit', event => {
    event.preventDefault()
    messages.clear()
    submit.disabled = true
    const method = kind.value as ReauthenticationMethod
    Promise.resolve().then(() => proof(method)).then(body => client.reauthenticate(body)).then(() => {
      confirmed = true
      dialog.close()
    }, error => {
      messages.show(refusalOf(error), 'error')
      if (input !== null) {
        input.value = ''
        input.focus()
      }
    }).finally(() => { submit.disabled = false })
  })

  showMethod(methods[0] ?? 'password')
  document.body.append(dialog)
  dialog.showModal()
  focusProof()
  return { answer, abandon: () => { dialog.close() } }
}

/**
 * The console's `confirmIdentity` (see api.ts): one dialog at a time, shared by the calls
 * refused meanwhile, so that one proof retries them all. The session's end closes it.
 */
export function reauthenticationPrompt (client: AuthClient): (methods: ReauthenticationMethod[]) => Promise<boolean> {
  let current: ReturnType<typeof ask> | null = null
  client.onSessionEnd(() => { current?.abandon() })
  return methods => {
    if (current === null) {
      const asked = ask(client, methods.length === 0 ? ['password'] : methods)
      current = asked
      asked.answer.then(() => { current = null })
    }
    return current.answer
  }
}
