// POST /auth/password/change: the current password proves the caller; every other session ends, this one stays.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { startMailServer } from '../helpers/mail.js'
import { whileHeld } from '../helpers/locks.js'
import { until } from '../helpers/until.js'
import { loginWithBody, loginWithCookies, newAccount, registerAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, pool, database } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })

const change = (headers: Record<string, string>, payload: unknown) =>
  app.inject({ method: 'POST', url: '/auth/password/change', headers, payload: payload as object })
const me = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/users/me', headers })
const login = (email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
const sessionOf = (refreshToken: string) => refreshToken.split('.')[0] as string

t.test('changes the password, ends the other sessions and keeps this one', async t => {
  const account = await registerAccount(app)
  const current = await loginWithBody(app, account)
  const other = await loginWithBody(app, account)
  const browser = await loginWithCookies(app, account)
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const resetMail = await mail.nextMail(account.email, { subject: /^Reset your password$/ })

  const newPassword = 'my much better passphrase'
  const response = await change({ authorization: `Bearer ${current.accessToken}` }, { currentPassword: account.password, newPassword })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  t.same(response.cookies, [], 'no cookie is touched')

  t.equal((await me({ authorization: `Bearer ${current.accessToken}` })).statusCode, 200, 'this session goes on')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: current.refreshToken } })
  t.equal(refreshed.statusCode, 200, 'and still refreshes')
  t.equal((await me({ authorization: `Bearer ${other.accessToken}` })).json().code, 'AUTH_SESSION_REVOKED', 'another session ended')
  t.equal((await me({ cookie: browser.cookie })).json().code, 'AUTH_SESSION_REVOKED', 'the browser session ended')
  const otherRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: other.refreshToken } })
  t.equal(otherRefresh.json().code, 'AUTH_REFRESH_REVOKED')
  t.equal(await prisma.session.count({ where: { userId: account.user.id, revokedReason: 'password_change' } }), 2)
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sessionOf(current.refreshToken) } })).revokedAt, null)

  t.equal((await login(account.email, account.password)).statusCode, 401, 'the old password fails')
  t.equal((await login(account.email, newPassword)).statusCode, 200, 'the new one works')
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.changed', subjectId: account.user.id, ip: '127.0.0.1' } }), 1, 'audited, with the client address (regression: none)')
  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: resetMail.token, password: 'reset over the change' } })
  t.equal(reset.json().code, 'RESET_TOKEN_INVALID', 'a reset link sent before the change died with it')
  const notice = await mail.nextMail(account.email, { subject: /^Your password was changed$/ })
  t.match(notice.text, /other sessions were signed out/)
})

t.test('a wrong current password is 403 and changes nothing', async t => {
  const account = await registerAccount(app)
  const current = await loginWithBody(app, account)
  const other = await loginWithBody(app, account)
  const response = await change({ authorization: `Bearer ${current.accessToken}` }, { currentPassword: 'not my password at all', newPassword: 'whatever new passphrase' })
  t.equal(response.statusCode, 403)
  t.same(response.json(), { statusCode: 403, code: 'INVALID_CURRENT_PASSWORD', error: 'Forbidden', message: 'The current password is wrong' })
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.check_failed', subjectId: account.user.id, ip: '127.0.0.1' } }), 1, 'audited, with the client address (regression: none)')
  t.equal((await me({ authorization: `Bearer ${other.accessToken}` })).statusCode, 200, 'no session ended')
  t.equal((await login(account.email, account.password)).statusCode, 200, 'the password is unchanged')
})

t.test('the new password follows the registration policy', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  for (const newPassword of ['password123', 'Qwertyuiop', account.email, account.username.toUpperCase()]) {
    const response = await change({ authorization: `Bearer ${accessToken}` }, { currentPassword: account.password, newPassword })
    t.equal(response.statusCode, 400, newPassword)
    t.equal(response.json().code, 'PASSWORD_TOO_WEAK', newPassword)
  }
  t.equal((await login(account.email, account.password)).statusCode, 200)
})

t.test('only a live session may change the password', async t => {
  const account = await registerAccount(app)
  const { accessToken, refreshToken } = await loginWithBody(app, account)
  const payload = { currentPassword: account.password, newPassword: 'a new passphrase here' }
  const none = await change({}, payload)
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'AUTH_REQUIRED')
  await prisma.session.update({ where: { id: sessionOf(refreshToken) }, data: { revokedAt: new Date() } })
  const revoked = await change({ authorization: `Bearer ${accessToken}` }, payload)
  t.equal(revoked.statusCode, 401)
  t.equal(revoked.json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await login(account.email, account.password)).statusCode, 200)
})

t.test('with cookies, a browser on the own origin may change it; a foreign page may not', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const payload = { currentPassword: account.password, newPassword: 'a browser made passphrase' }
  const foreign = await change({ cookie, origin: 'https://evil.example' }, payload)
  t.equal(foreign.json().code, 'CSRF_REJECTED')
  const own = await change({ cookie, 'sec-fetch-site': 'same-origin' }, payload)
  t.equal(own.statusCode, 204)
})

t.test('bad input: 400, nothing changed', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const cases: unknown[] = [
    {},
    { currentPassword: account.password },
    { newPassword: 'a new passphrase here' },
    { currentPassword: '', newPassword: 'a new passphrase here' },
    { currentPassword: account.password, newPassword: 'short' },
    { currentPassword: account.password, newPassword: 'x'.repeat(257) },
    { currentPassword: account.password, newPassword: 12345678901 },
    { currentPassword: account.password, newPassword: 'a new passphrase here', logoutOthers: false },
    { current_password: account.password, new_password: 'a new passphrase here' }
  ]
  for (const payload of cases) {
    const response = await change({ authorization: `Bearer ${accessToken}` }, payload)
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 60))
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED' })
  }
  t.equal((await login(account.email, account.password)).statusCode, 200)
})

t.test('a reset and a change at once: no deadlock, and the reset wins over a change checked against the old password', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const account = await registerAccount(app)
  const intruder = await loginWithBody(app, account)
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const resetMail = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  const token = await prisma.oneTimeToken.findFirstOrThrow({ where: { userId: account.user.id, purpose: 'password_reset', usedAt: null } })
  const ownerPassword = 'the owner resets it 2026'
  const intruderPassword = 'the intruder changes it 77'
  const waiting = async () => (await pool.query('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\'')).rowCount

  // The reset link's row is held so that the reset is under way when the change arrives: the
  // two then meet on the user's row and the token's, where taking them in opposite orders
  // deadlocked (a 500), and where a change committed after the reset overwrote its password.
  const [reset, changed] = await withClient(database.url, async holder => {
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM "OneTimeToken" WHERE id = $1 FOR UPDATE', [token.id])
    const reset = app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: resetMail.token, password: ownerPassword } })
    await until('the reset waits', async () => await waiting() === 1, 5000)
    const changed = change({ authorization: `Bearer ${intruder.accessToken}` }, { currentPassword: account.password, newPassword: intruderPassword })
    await until('the change waits too', async () => await waiting() === 2, 5000)
    await holder.query('COMMIT')
    return [await reset, await changed]
  })
  t.equal(reset.statusCode, 204)
  t.equal(changed.statusCode, 403)
  t.equal(changed.json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal((await login(account.email, ownerPassword)).statusCode, 200, 'the reset password is the one in force')
  t.equal((await login(account.email, intruderPassword)).statusCode, 401)
})

t.test('a change under way across a confirmed email change tells the address the account has now (regression: the one it left)', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const account = await registerAccount(app)
  await mail.nextMail(account.email, { subject: /^Confirm your email address$/ })
  const session = await loginWithBody(app, account)
  const newEmail = newAccount().email
  const response = await whileHeld(database.url, pool, {
    // What the confirmation of the change commits while the change hashes the new password: the new address.
    hold: async holder => await holder.query('UPDATE "User" SET email = $2, "pendingEmail" = NULL, "emailVerifiedAt" = now() WHERE id = $1', [account.user.id, newEmail]),
    waitingStatement: '%"User"%'
  }, async () => await change({ authorization: `Bearer ${session.accessToken}` }, { currentPassword: account.password, newPassword: 'a wholly new passphrase 42' }))
  t.equal(response.statusCode, 204)
  const notice = await mail.nextMail(newEmail, { subject: /^Your password was changed$/ })
  t.equal(notice.link, undefined)
  await t.rejects(mail.nextMail(account.email, { subject: /^Your password was changed$/, timeoutMs: 500 }), 'nothing to the address the account left')
})
