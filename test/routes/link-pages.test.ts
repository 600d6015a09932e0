// The default pages of the mailed links: served under their own policy while the link templates point at the service, gone once they point elsewhere.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

const { app } = await buildTestApp(t, { env: { PASSWORD_MIN_LENGTH: '10' } })

t.test('/verify-email and /reset-password are pages that run only their own script (regression: 404, the mailed link led nowhere)', async t => {
  for (const [url, kind] of [['/verify-email?token=abc', 'verify'], ['/reset-password#token=abc', 'reset']] as const) {
    const response = await app.inject({ method: 'GET', url })
    t.equal(response.statusCode, 200, url)
    t.match(response.headers['content-type'], /^text\/html; charset=utf-8/)
    t.equal(response.headers['cache-control'], 'no-store')
    t.equal(response.headers['referrer-policy'], 'no-referrer', 'the token in the address never leaves in a Referer')
    const csp = String(response.headers['content-security-policy'])
    t.match(csp, /default-src 'none'/)
    t.match(csp, /script-src 'self'/)
    t.match(csp, /frame-ancestors 'none'/)
    t.match(csp, /require-trusted-types-for 'script'/)
    t.match(response.body, `data-page="${kind}"`)
    t.notMatch(response.body, /<script>|\son[a-z]+=/, 'no inline script or handler')
    t.notMatch(response.body, /abc/, 'the token is not written into the page')
  }
  t.match((await app.inject({ method: 'GET', url: '/reset-password' })).body, 'minlength="10"', 'the password policy in the form')
  const script = await app.inject({ method: 'GET', url: '/link-pages.js' })
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.match(script.body, 'history.replaceState', 'the token leaves the address bar')
})

// Regression: the rules were unsaid until a password was refused, and the refusal was only in a status, tied to no field;
// and the button was disabled while the page waited, which sends the keyboard focus to <body>.
t.test('the reset page states the rules beside the field, and its script ties a refusal to the field without disabling the button', async t => {
  const page = (await app.inject({ method: 'GET', url: '/reset-password' })).body
  t.match(page, /<input id="password" name="password"[^>]* aria-describedby="password-hint">/, 'the field is described by the rules')
  t.match(page, /<label for="password">New password<\/label>/)
  t.match(page, '<p id="password-hint">At least 10 characters; not a common or easily guessed password, nor your email address or username.</p>', 'the rules, with PASSWORD_MIN_LENGTH')
  t.match(page, '<p id="password-error"></p>', 'where a refusal goes')
  const script = (await app.inject({ method: 'GET', url: '/link-pages.js' })).body
  t.notMatch(script, /\.disabled\b/, 'no button is disabled')
  t.match(script, "setAttribute('aria-disabled', 'true')", 'busy instead')
  t.match(script, "error.code === 'PASSWORD_TOO_WEAK'")
  t.match(script, "password.setAttribute('aria-invalid', 'true')")
  t.match(script, "password.setAttribute('aria-describedby', 'password-error password-hint')")
  t.match(script, 'password.focus()', 'a refused password: its field gets the focus')
  t.match(script, 'status.focus()', 'done: the outcome gets the focus, the form being hidden')
})

t.test('a template that leads to the page with the token in its fragment keeps the page (regression: 404)', async t => {
  const publicUrl = 'https://auth.example.com'
  const { app: fragment } = await buildTestApp(t, { env: { PUBLIC_URL: publicUrl, EMAIL_VERIFICATION_URL: `${publicUrl}/verify-email#token={token}`, PASSWORD_RESET_URL: `${publicUrl}/reset-password?lang=en&token={token}` } })
  t.equal((await fragment.inject({ method: 'GET', url: '/verify-email' })).statusCode, 200)
  t.equal((await fragment.inject({ method: 'GET', url: '/reset-password' })).statusCode, 200)
})

t.test('a page whose link template points elsewhere is not served', async t => {
  const { app: elsewhere } = await buildTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com', PASSWORD_RESET_URL: 'https://app.example.com/reset-password#token={token}' } })
  t.equal((await elsewhere.inject({ method: 'GET', url: '/reset-password' })).statusCode, 404)
  t.equal((await elsewhere.inject({ method: 'GET', url: '/verify-email' })).statusCode, 200, 'the other still is')
  const { app: neither } = await buildTestApp(t, { env: { PASSWORD_RESET_URL: 'https://app.example.com/r?t={token}', EMAIL_VERIFICATION_URL: 'https://app.example.com/v?t={token}' } })
  for (const url of ['/reset-password', '/verify-email', '/link-pages.js']) t.equal((await neither.inject({ method: 'GET', url })).statusCode, 404, url)
})
