// The pages the mailed links open by default (/verify-email, /reset-password): served while PASSWORD_RESET_URL or EMAIL_VERIFICATION_URL leave the link on the service itself.
import type { FastifyInstance, FastifyReply } from 'fastify'
import { RESET_PAGE, VERIFICATION_PAGE } from '../config-derived.js'
import { PAGE_CSP } from '../plugins/security-headers.js'
import { typedPasswordLimit, type PasswordPolicy } from '../schemas/common.js'

export interface LinkPageRoutesOptions {
  /** Serve /verify-email: EMAIL_VERIFICATION_URL leads there (see `ownLinkPagesOf`). */
  verification: boolean
  /** Serve /reset-password: PASSWORD_RESET_URL leads there. */
  reset: boolean
  passwordPolicy: PasswordPolicy
}

// Under PAGE_CSP, as the console. The global headers' `no-referrer` keeps the token in the address out of every Referer.
const SCRIPT_PATH = '/link-pages.js'

function page (kind: 'verify' | 'reset', title: string, form: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<script src="${SCRIPT_PATH}" defer></script>
</head>
<body data-page="${kind}">
<main>
<h1>${title}</h1>
<form id="form" method="post">${form}</form>
<p id="status" role="status" tabindex="-1"></p>
</main>
</body>
</html>
`
}

/**
 * Nothing happens on opening: mail scanners open links, and some run their scripts. The
 * token goes out of the address bar and the history first, then waits for the button.
 * Another link opened in the same tab changes only the fragment, and the page does not load
 * again: its token replaces the first. A token is base64url, so what a link rewriter appends
 * after it (`#token=T?utm_source=…`) is not taken for part of it. The button is marked busy,
 * never disabled: a disabled button loses the focus to <body>, and a keyboard user their place.
 * A refused password is told on its field, which gets the focus; the outcome, on the status.
 * The link templates are checked at start by the same reading of the token (config-derived.ts).
 */
const SCRIPT = `'use strict'
const form = document.getElementById('form')
const status = document.getElementById('status')
const verifying = document.body.dataset.page === 'verify'
const say = text => { status.textContent = text }
const tokenIn = params => (/^[A-Za-z0-9_-]+/.exec(new URLSearchParams(params).get('token') ?? '') ?? [])[0]
const button = form.querySelector('button')
const password = form.elements.password
const passwordError = document.getElementById('password-error')
const busy = on => { if (on) button.setAttribute('aria-disabled', 'true'); else button.removeAttribute('aria-disabled') }
let token
function takeToken () {
  token = tokenIn(location.hash.slice(1)) ?? tokenIn(location.search.slice(1))
  history.replaceState(null, '', location.pathname)
  form.hidden = !token
  busy(false)
  say(token ? '' : 'This link is incomplete. Open the link from the mail again, or ask for a new one.')
}
function refusePassword (text) {
  passwordError.textContent = text
  password.setAttribute('aria-invalid', 'true')
  password.setAttribute('aria-describedby', 'password-error password-hint')
  password.focus()
}
takeToken()
addEventListener('hashchange', takeToken)
password?.addEventListener('input', () => {
  passwordError.textContent = ''
  password.removeAttribute('aria-invalid')
  password.setAttribute('aria-describedby', 'password-hint')
})
form.addEventListener('submit', async event => {
  event.preventDefault()
  if (button.getAttribute('aria-disabled') === 'true') return
  busy(true)
  say('')
  const body = verifying ? { token } : { token, password: password.value }
  try {
    const response = await fetch(verifying ? '/auth/email/verify' : '/auth/password/reset', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
    })
    if (response.ok) {
      form.hidden = true
      say(verifying ? 'Your email address is confirmed. You can close this page.' : 'Your password is changed and every session has ended: sign in with the new one.')
      // The button is hidden with the form: the focus goes on purpose to what happened.
      status.focus()
      return
    }
    const error = await response.json().catch(() => null)
    const text = error && error.message ? error.message : 'That did not work; try again.'
    if (!verifying && error && error.code === 'PASSWORD_TOO_WEAK') refusePassword(text)
    else say(text)
  } catch {
    say('The service could not be reached; try again.')
  }
  busy(false)
})
`

function sendPage (reply: FastifyReply, html: string) {
  return reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html)
}

export async function linkPageRoutes (app: FastifyInstance, { verification, reset, passwordPolicy }: LinkPageRoutesOptions) {
  if (!verification && !reset) return
  const hide = { schema: { hide: true } }
  app.get(SCRIPT_PATH, hide, (_request, reply) =>
    reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache').type('text/javascript; charset=utf-8').send(SCRIPT))
  if (verification) {
    const html = page('verify', 'Confirm your email address', '<button type="submit">Confirm this address</button>')
    app.get(VERIFICATION_PAGE, hide, (_request, reply) => sendPage(reply, html))
  }
  if (reset) {
    // The rules stated before a try (the service's, see NewPassword), and a refusal tied to the field the script focuses.
    const field = `<p><label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${passwordPolicy.minLength}" maxlength="${typedPasswordLimit(passwordPolicy)}" aria-describedby="password-hint"></p>
<p id="password-hint">At least ${passwordPolicy.minLength} characters; not a common or easily guessed password, nor your email address or username.</p>
<p id="password-error"></p>
`
    const html = page('reset', 'Choose a new password', `${field}<button type="submit">Set the new password</button>`)
    app.get(RESET_PAGE, hide, (_request, reply) => sendPage(reply, html))
  }
}
