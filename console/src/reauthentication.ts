// Fresh authentication in the console: a sensitive change refused with REAUTHENTICATION_REQUIRED asks the admin to prove it is them (docs/second-factor.md, Second factor).
import { isAuthError, type AuthClient, type ReauthenticateInput, type ReauthenticationMethod } from '../../packages/client/src/index.js'
import { problemOf } from './api.js'
import { h, messageArea, uniqueId, whileBusy } from './dom.js'
import { methodChoice, passkeyAssertion, passkeyProblem } from './proof.js'

/** What a refused proof tells the admin; the dialog stays open for another try. */
function refusalOf (error: unknown): string {
  if (isAuthError(error, 'INVALID_CURRENT_PASSWORD')) return 'That password is not right. Try again.'
  if (isAuthError(error, 'MFA_CODE_INVALID')) return 'That code is not right. Try again.'
  return passkeyProblem(error) ?? problemOf(error)
}

/** The proof of the chosen method: a passkey's assertion over a challenge bound to this session. */
async function proofOf (client: AuthClient, method: ReauthenticationMethod, value: string): Promise<ReauthenticateInput> {
  if (method === 'password') return { password: value }
  if (method === 'totp') return { code: value }
  if (method === 'recovery_code') return { recoveryCode: value }
  return { webauthn: await passkeyAssertion(await client.reauthenticationPasskeyOptions()) }
}

/**
 * The modal dialog: the methods the service listed, one proof at a time. Resolves true once
 * the service took a proof, false when the admin cancels (the button, Escape) or the session ends.
 */
function ask (client: AuthClient, methods: ReauthenticationMethod[]): { answer: Promise<boolean>, abandon: () => void } {
  const messages = messageArea()
  const titleId = uniqueId('reauthenticate')
  const submit = h('button', { type: 'submit' }, 'Confirm')
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel')
  const choice = methodChoice(methods, submit, 'Confirm with')
  const form = h('form', { 'aria-labelledby': titleId },
    h('p', {}, 'This is a sensitive change, and you have not confirmed it is you lately. Nothing is changed until you do.'),
    ...choice.elements,
    h('div', { class: 'actions' }, submit, cancel)
  )
  const dialog = h('dialog', { class: 'reauthenticate', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Confirm it is you'),
    messages.element,
    form
  )

  let confirmed = false
  const answer = new Promise<boolean>(resolve => {
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(confirmed)
    })
  })
  choice.onChange(() => { messages.clear() })
  cancel.addEventListener('click', () => { dialog.close() })
  form.addEventListener('submit', event => {
    event.preventDefault()
    messages.clear()
    // Busy, not disabled: closing, the dialog gives the focus back to the control that opened it, which must be able to take it.
    whileBusy(submit, async () => await client.reauthenticate(await proofOf(client, choice.method(), choice.value()))).then(() => {
      confirmed = true
      dialog.close()
    }, error => {
      choice.retry(messages.show(refusalOf(error), 'error'))
    })
  })

  document.body.append(dialog)
  dialog.showModal()
  choice.focus()
  return { answer, abandon: () => { dialog.close() } }
}

/**
 * The console's `confirmIdentity` (see api.ts): one dialog at a time, shared by the calls
 * refused meanwhile, so that one proof retries them all. The session's end closes it, and so
 * do leaving the screen and another tab's sign-in.
 */
export function reauthenticationPrompt (client: AuthClient): (methods: ReauthenticationMethod[]) => Promise<boolean> {
  let current: ReturnType<typeof ask> | null = null
  client.onSessionEnd(() => { current?.abandon() })
  // Leaving the screen (the browser's Back, say) cancels too: the change was made after it,
  // unseen, on a screen no longer shown.
  window.addEventListener('hashchange', () => { current?.abandon() })
  // And so does another tab's sign-in: the proof would be the other account's, for a change
  // asked on a screen about to be drawn anew.
  client.onSignIn(() => { current?.abandon() })
  return methods => {
    if (current === null) {
      const asked = ask(client, methods.length === 0 ? ['password'] : methods)
      current = asked
      asked.answer.then(() => { current = null })
    }
    return current.answer
  }
}
