// Signing in through the service's own cookie flow: the password, then the second factor when the account has one (README, Second factor).
import { isAuthError, type AuthClient, type LoginResult, type MfaChallenge, type SignedIn } from '../../../packages/client/src/index.js'
import { problemOf } from '../api.js'
import { field, h, messageArea, option, type MessageArea } from '../dom.js'

export interface SignInOptions {
  client: AuthClient
  /** Why the admin is here again (the session ended). */
  notice?: string
  onSignedIn: (answer: SignedIn) => void
}

/** What a failed attempt tells the admin. Every login failure is the same one (README, Brute force against one account). */
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

  async function settle (attempt: Promise<LoginResult>, submit: HTMLButtonElement, onChallengeError: (error: unknown) => void): Promise<void> {
    submit.disabled = true
    try {
      const answer = await attempt
      if (answer.mfaRequired) secondFactorStep(answer)
      else onSignedIn(answer)
    } catch (error) {
      onChallengeError(error)
    } finally {
      submit.disabled = false
    }
  }

  function passwordStep (): void {
    const identifier = h('input', { name: 'identifier', autocomplete: 'username', required: true, maxlength: '254' })
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
    const submit = h('button', { type: 'submit' }, 'Sign in')
    const form = h('form', { 'aria-label': 'Sign in' },
      field('Email or username', identifier),
      field('Password', password),
      submit
    )
    form.addEventListener('submit', event => {
      event.preventDefault()
      messages.clear()
      settle(client.login({ identifier: identifier.value.trim(), password: password.value }), submit, error => {
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
    const kinds = challenge.methods.filter(method => method === 'totp' || method === 'recovery_code')
    if (kinds.length === 0) {
      messages.show('This account\'s second factor is a passkey, which the console does not take. Sign in here with a recovery code: make a set (POST /auth/mfa/recovery-codes) or set up an authenticator app first.', 'error')
      passwordStep()
      return
    }
    const kind = h('select', { name: 'method' }, kinds.map((method, i) => option(method, method === 'totp' ? 'Code from the authenticator app' : 'Recovery code', i === 0)))
    const code = h('input', { name: 'code', autocomplete: 'one-time-code', required: true, maxlength: '64', inputmode: 'numeric' })
    kind.addEventListener('change', () => { code.inputMode = kind.value === 'totp' ? 'numeric' : 'text' })
    const submit = h('button', { type: 'submit' }, 'Verify')
    const restart = h('button', { type: 'button', class: 'secondary' }, 'Start over')
    restart.addEventListener('click', () => { messages.clear(); passwordStep() })
    const form = h('form', { 'aria-label': 'Second factor' },
      h('p', {}, 'This account has a second factor. Enter a code to finish signing in.'),
      kinds.length > 1 ? field('Method', kind) : null,
      field(kinds[0] === 'totp' && kinds.length === 1 ? 'Code from the authenticator app' : 'Code', code),
      h('div', { class: 'actions' }, submit, restart)
    )
    form.addEventListener('submit', event => {
      event.preventDefault()
      messages.clear()
      const value = code.value.trim()
      const input = kind.value === 'totp' ? { mfaToken: challenge.mfaToken, code: value } : { mfaToken: challenge.mfaToken, recoveryCode: value }
      settle(client.verifyMfa(input), submit, error => {
        if (isAuthError(error, 'MFA_CHALLENGE_EXPIRED')) {
          messages.show('That took too long or too many codes were wrong. Sign in again.', 'error')
          passwordStep()
          return
        }
        messages.show(isAuthError(error, 'MFA_CODE_INVALID') ? 'That code is not right. Try again.' : problemOf(error), 'error')
        code.value = ''
        code.focus()
      })
    })
    body.replaceChildren(form)
    code.focus()
  }

  passwordStep()
  return screen
}

/** A signed-in user whom the admin API refuses: told so, offered nothing but signing out (`signOut` tells a failure in `messages`). */
export function refusalScreen (who: string, reason: 'not-admin' | 'needs-mfa', signOut: (messages: MessageArea) => void): HTMLElement {
  const messages = messageArea()
  const button = h('button', { type: 'button', onclick: () => { signOut(messages) } }, 'Sign out')
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
