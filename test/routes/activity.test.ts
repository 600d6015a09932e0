// GET /users/me/activity: the audit trail's entries about the caller, as the caller sees them.
import t from 'tap'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { startMailServer } from '../helpers/mail.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
const activity = (headers: Record<string, string>, query = '') => app.inject({ method: 'GET', url: `/users/me/activity${query}`, headers })

t.test('the caller\'s own entries, newest first: what they did, what an admin did, what someone tried', async t => {
  const account = await registerAccount(app)
  const stranger = await registerAccount(app)
  const admin = await loginAsAdmin(app, prisma)
  clock.advance(1)
  const { accessToken } = await loginWithBody(app, account)
  const headers = bearer(accessToken)
  clock.advance(1)
  const wrong = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password at all' } })
  t.equal(wrong.statusCode, 401)
  clock.advance(1)
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${account.user.id}`, headers: admin.headers, payload: { profile: { displayName: 'Ada' } } })).statusCode, 200)
  await loginWithBody(app, stranger)

  const response = await activity(headers)
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const { items, nextCursor } = response.json()
  t.same(items.map((entry: { action: string, by: string | null }) => [entry.action, entry.by]), [
    ['user.updated', 'admin'],
    ['login.failed', null],
    ['login.succeeded', 'self'],
    ['user.registered', 'self']
  ], 'only entries about the caller: not the stranger\'s, not the admin\'s own login')
  t.equal(nextCursor, null)
  const [update, failed, succeeded] = items
  t.same(update.details, { fields: ['displayName'] })
  t.equal(update.ip, null, 'an admin is named by role only, not by the address they acted from')
  t.notOk(JSON.stringify(update).includes(admin.user.id), 'nor by id')
  t.notOk(JSON.stringify(items).includes(admin.email), 'nor by email')
  t.match(failed, { details: { reason: 'wrong_password' }, ip: String })
  t.match(succeeded, { ip: '127.0.0.1', details: { amr: ['pwd'] } })
  t.match(items[0], { id: String, createdAt: String })
})

t.test('paged by cursor; bad queries are 400; an ended session is 401', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const headers = bearer(accessToken)
  for (let i = 0; i < 3; i++) {
    clock.advance(1)
    await loginWithBody(app, account)
  }
  const first = (await activity(headers, '?limit=2')).json()
  t.equal(first.items.length, 2)
  t.type(first.nextCursor, 'string')
  const second = (await activity(headers, `?limit=2&cursor=${first.nextCursor as string}`)).json()
  const third = (await activity(headers, `?limit=2&cursor=${second.nextCursor as string}`)).json()
  const ids = [...first.items, ...second.items, ...third.items].map((entry: { id: string }) => entry.id)
  t.equal(ids.length, 5, 'four logins and the registration')
  t.equal(new Set(ids).size, 5, 'none twice')
  t.equal(third.nextCursor, null)

  for (const query of ['?limit=0', '?limit=101', '?cursor=bm90LWEtY3Vyc29y', '?subjectId=00000000-0000-4000-8000-000000000000']) {
    const refused = await activity(headers, query)
    t.equal(refused.statusCode, 400, query)
    t.equal(refused.json().code, 'VALIDATION_FAILED')
  }
  t.equal((await activity({})).json().code, 'AUTH_REQUIRED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers })).statusCode, 204)
  t.equal((await activity(headers)).json().code, 'AUTH_SESSION_REVOKED')
})

// Regression: a reset by the mailed link read `by: "self"`, as if the user had done it signed in.
t.test('what a mailed link did is by nobody signed in: whoever held the link', async t => {
  const account = await registerAccount(app)
  const verification = await mail.nextMail(account.email, { subject: /^Confirm your email address$/ })
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: verification.token } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
  const link = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  const password = 'a brand new passphrase here'
  t.equal((await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: link.token, password } })).statusCode, 204)
  const { accessToken } = await loginWithBody(app, { email: account.email, password })
  const { items } = (await activity(bearer(accessToken))).json()
  const byAction = Object.fromEntries(items.map((entry: { action: string, by: string | null }) => [entry.action, entry.by]))
  t.match(byAction, { 'email.verified': null, 'password.reset': null, 'login.succeeded': 'self', 'user.registered': 'self' })
})
