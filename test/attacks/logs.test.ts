// No password, token, cookie or authorization header in any log line, at trace level, through logins, refreshes and failures.
import t from 'tap'
import { pino } from 'pino'
import { logRedaction } from '../../src/log-redaction.js'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { logCapture, startMailServer } from '../helpers/mail.js'
import { newAccount } from '../helpers/users.js'
import { totpCode } from '../../src/services/mfa/totp.js'

t.test('secrets never reach the log', async t => {
  const mail = await startMailServer(t)
  const capture = logCapture()
  // As server.ts makes the process logger, at the most verbose level.
  const logger = pino({ level: 'trace', ...logRedaction }, capture.stream)
  const { app, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url }, logger })
  const http = await listen(app)
  const account = newAccount()
  const secrets: string[] = [account.password, 'a wrong password 123', 'brand new passphrase 77']

  t.equal((await http.request('/auth/register', { body: account })).status, 201)
  const verification = await mail.nextMail(account.email)
  secrets.push(verification.token as string)
  // A second factor is set up only on a proven address: the link proves it, and its request is logged too.
  t.equal((await http.request('/auth/email/verify', { body: { token: verification.token } })).status, 204)
  const body = (await http.request('/auth/login', { body: { email: account.email, password: account.password } })).json() as { accessToken: string, refreshToken: string }
  secrets.push(body.accessToken, body.refreshToken)
  const refreshed = (await http.request('/auth/refresh', { body: { refreshToken: body.refreshToken } })).json() as { accessToken: string, refreshToken: string }
  secrets.push(refreshed.accessToken, refreshed.refreshToken)

  const browser = await fetch(`${http.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }, body: JSON.stringify({ email: account.email, password: account.password }) })
  const cookies = browser.headers.getSetCookie().map(line => line.split(';')[0] as string)
  secrets.push(...cookies.map(pair => pair.split('=')[1] as string))
  const cookieHeader = cookies.join('; ')
  await http.request('/auth/refresh', { method: 'POST', headers: { cookie: cookieHeader, 'sec-fetch-site': 'same-origin' } })
  await http.request('/users/me', { headers: { cookie: cookieHeader } })
  await http.request('/users/me', { headers: { authorization: `Bearer ${refreshed.accessToken}` } })

  // The second factor: its secret, recovery codes and challenge tokens, also in refused requests.
  // Its set-up needs the login's own token, the fresh one.
  const asUser = { authorization: `Bearer ${body.accessToken}` }
  const { secret, otpauthUri } = (await http.request('/auth/mfa/totp', { headers: asUser, body: { currentPassword: account.password } })).json() as { secret: string, otpauthUri: string }
  secrets.push(secret, otpauthUri)
  const { recoveryCodes } = (await http.request('/auth/mfa/totp/confirm', { headers: asUser, body: { code: totpCode(secret, clock.now()) } })).json() as { recoveryCodes: string[] }
  secrets.push(...recoveryCodes)
  const challenge = (await http.request('/auth/login', { body: { email: account.email, password: account.password } })).json() as { mfaToken: string }
  secrets.push(challenge.mfaToken)
  await http.request('/auth/mfa/verify', { body: { mfaToken: challenge.mfaToken, recoveryCode: recoveryCodes[0], extra: 'field' } })
  await http.request('/auth/mfa/verify', { body: { mfaToken: challenge.mfaToken, recoveryCode: recoveryCodes[1] } })
  await http.request('/auth/reauthenticate', { headers: asUser, body: { recoveryCode: recoveryCodes[2] } })

  // Failures: wrong password, bad and stale tokens, wrong current password, bogus reset.
  await http.request('/auth/login', { body: { email: account.email, password: 'a wrong password 123' } })
  await http.request('/auth/login', { body: { email: account.email, password: 'a wrong password 123', extra: 'field' } })
  await http.request('/users/me', { headers: { authorization: `Bearer ${body.accessToken}x` } })
  await http.request('/auth/refresh', { body: { refreshToken: body.refreshToken } })
  await http.request('/auth/verify', { body: { token: `${refreshed.accessToken}x` } })
  await http.request('/auth/password/change', { headers: { authorization: `Bearer ${refreshed.accessToken}` }, body: { currentPassword: 'a wrong password 123', newPassword: 'brand new passphrase 77' } })
  await http.request('/auth/password/forgot', { body: { email: account.email } })
  const reset = await mail.nextMail(account.email, { subject: /reset/i })
  secrets.push(reset.token as string)
  // A link whose template carries the token in the query sends it to the service with the page's address.
  const link = new URL(reset.link as string)
  t.equal((await http.request(`${link.pathname}?token=${reset.token as string}`, { method: 'GET' })).status, 200)
  await http.request('/auth/password/reset', { body: { token: `${reset.token as string}x`, password: 'brand new passphrase 77' } })
  await http.request('/auth/password/reset', { body: { token: reset.token, password: 'brand new passphrase 77' } })
  await app.mailer.flush()

  const text = capture.text()
  t.ok(capture.lines.length > 20, `${capture.lines.length} lines logged`)
  t.match(text, /incoming request/, 'requests are logged at this level')
  t.match(text, /"url":"\/reset-password"/, 'a URL is logged by its path, without the query')
  for (const secret of secrets) {
    t.notOk(text.includes(secret), `not in the log: ${secret.slice(0, 12)}…`)
    t.notOk(text.includes(secret.slice(-24)), 'not even its end')
  }
  t.notMatch(text, /bearer /i, 'no authorization header')
  t.notMatch(text, /refresh_token=|access_token=/, 'no cookie header')
})
