// Signing in through the service's own cookie flow: the password, then the second factor when the account has one (docs/second-factor.md, Second factor).
import { isAuthError, type AuthClient, type LoginResult, type MfaChallenge, type MfaMethod, type SignedIn } from '../../../packages/client/src/index.js'
import { problemOf } from '../api.js'
import { field, h, messageArea, whileBusy, type MessageArea } from '../dom.js'
import { methodChoice, passkeyAssertion, passkeyProblem } from '../proof.js'

export interface SignInOptions {
  client: AuthClient
  /** Why the admin is here again (the session ended). */
  notice?: string
  onSignedIn: (answer: SignedIn) => void
}

/** The second step met with the chosen method: a passkey's assertion over a challenge bound to this login. */
async function secondFactorProof (client: AuthClient, mfaToken: string, method: MfaMethod, value: string): Promise<LoginResult> {
  if (method === 'totp') return await client.verifyMfa({ mfaToken, code: value })
  if (method === 'recovery_code') return await client.verifyMfa({ mfaToken, recoveryCode: value })
  return await client.verifyMfa({ mfaToken, webauthn: await passkeyAssertion(await client.mfaPasskeyOptions({ mfaToken })) })
}

/** A sign-in with a passkey alone: the browser offers the passkeys it has for this site. */
async function passwordlessSignIn (client: AuthClient): Promise<LoginResult> {
  return await client.loginWithPasskey({ response: await passkeyAssertion(await client.passkeyLoginOptions()) })
}

/** What a failed attempt tells the admin. Every login failure is the same one (docs/security.md, Brute force against one account). */
function loginProblem (error: unknown): string {
  if (isAuthError(error, 'AUTH_INVALID_CREDENTIALS')) return 'Wrong email, username or password.'
  if (isAuthError(error, 'EMAIL_NOT_VERIFIED')) return 'Verify your email address first: follow the link mailed to you.'
  // The page's origin is not the service's PUBLIC_URL (say, 127.0.0.1 for localhost): the CSRF check refuses it.
  if (isAuthError(error, 'CSRF_REJECTED')) return `The service does not accept sign-ins from ${location.origin}. Open the console at the service's PUBLIC_URL.`
  return problemOf(error)
}

export function signInScreen ({ client, notice, onSignedIn }: SignInOptions): HTMLElement {
  const messages = messageArea()
  const body = h('div', { class: 'sign-in-body' })
  const screen = h('main', { class: 'sign-in', id: 'main' },
    h('h1', { tabindex: '-1' }, 'Admin console'),
    messages.element,
    body
  )
  if (notice !== undefined) messages.show(notice, 'error')

  async function settle (attempt: () => Promise<LoginResult>, submit: HTMLButtonElement, onChallengeError: (error: unknown) => void): Promise<void> {
    let answer: LoginResult
    try {
      answer = await whileBusy(submit, attempt)
    } catch (error) {
      onChallengeError(error)
      return
    }
    if (answer.mfaRequired) secondFactorStep(answer)
    else onSignedIn(answer)
  }

  function passwordStep (): void {
    const identifier = h('input', { name: 'identifier', autocomplete: 'username', required: true, maxlength: '254' })
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
    const submit = h('button', { type: 'submit' }, 'Sign in')
    const withPasskey = h('button', { type: 'button', class: 'secondary' }, 'Sign in with a passkey')
    const form = h('form', { 'aria-label': 'Sign in' },
      field('Email or username', identifier),
      field('Password', password),
      h('div', { class: 'actions' }, submit, withPasskey)
    )
    withPasskey.addEventListener('click', () => {
      messages.clear()
      settle(() => passwordlessSignIn(client), withPasskey, error => { messages.show(passkeyProblem(error) ?? problemOf(error), 'error') })
    })
    form.addEventListener('submit', event => {
      event.preventDefault()
      messages.clear()
      settle(() => client.login({ identifier: identifier.value.trim(), password: password.value }), submit, error => {
        messages.show(loginProblem(error), 'error')
        password.value = ''
        password.focus()
      })
    })
    body.replaceChildren(form)
    if (screen.isConnected) identifier.focus()
  }

  /** The password was right; no cookie is set until the second factor is proven. */
  function secondFactorStep (challenge: MfaChallenge): void {
    const { mfaToken } = challenge
    const submit = h('button', { type: 'submit' }, 'Verify')
    const restart = h('button', { type: 'button', class: 'secondary' }, 'Start over')
    restart.addEventListener('click', () => { messages.clear(); passwordStep() })
    const choice = methodChoice(challenge.methods, submit, 'Method')
    choice.onChange(() => { messages.clear() })
    const form = h('form', { 'aria-label': 'Second factor' },
      h('p', {}, 'This account has a second factor. Prove it to finish signing in.'),
      ...choice.elements,
      h('div', { class: 'actions' }, submit, restart)
    )
    form.addEventListener('submit', event => {
      event.preventDefault()
      messages.clear()
      settle(() => secondFactorProof(client, mfaToken, choice.method(), choice.value()), submit, error => {
        if (isAuthError(error, 'MFA_CHALLENGE_EXPIRED')) {
          messages.show('That took too long or too many codes were wrong. Sign in again.', 'error')
          passwordStep()
          return
        }
        choice.retry(messages.show(isAuthError(error, 'MFA_CODE_INVALID') ? 'That code is not right. Try again.' : passkeyProblem(error) ?? problemOf(error), 'error'))
      })
    })
    body.replaceChildren(form)
    choice.focus()
  }

  passwordStep()
  return screen
}

/** A signed-in user whom the admin API refuses: told so, offered nothing but signing out (`signOut` tells a failure in `messages`). */
export function refusalScreen (who: string, reason: 'not-admin' | 'needs-mfa', signOut: (messages: MessageArea, button: HTMLButtonElement) => void): HTMLElement {
  const messages = messageArea()
  const button: HTMLButtonElement = h('button', { type: 'button', onclick: () => { signOut(messages, button) } }, 'Sign out')
  const text = reason === 'not-admin'
    ? `You are signed in as ${who}, which is not an administrator account. This console is for administrators only.`
    : `You are signed in as ${who}. Administrators must set up a second factor before using the console: set one up in your account, then sign in again.`
  return h('main', { class: 'sign-in', id: 'main' },
    h('h1', { tabindex: '-1' }, reason === 'not-admin' ? 'No access' : 'Second factor required'),
    h('p', { role: 'alert' }, text),
    messages.element,
    button
  )
}

/**
 * Who is signed in could not be checked (a 429, a 503, no connection), told why; "Try again"
 * checks again (`retry`). Not the sign-in form: the session may well live.
 */
export function checkFailedScreen (problem: string, retry: (button: HTMLButtonElement) => void): HTMLElement {
  const button: HTMLButtonElement = h('button', { type: 'button', onclick: () => { retry(button) } }, 'Try again')
  return h('main', { class: 'sign-in', id: 'main' },
    h('h1', { tabindex: '-1' }, 'Admin console'),
    h('p', { role: 'alert' }, `The console could not check who is signed in. ${problem}`),
    button
  )
}
