// A new way into the account (an authenticator app, a passkey, another address) needs the current
// password: a login's own access token is fresh, and whoever took it in its first minutes must
// not be able to set up a factor of theirs or move the address.
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { racedWhileHeld, whileHeld } from '../helpers/locks.js'
import { until } from '../helpers/until.js'
import { confirmEnrolment, enrolTotp, startEnrolment } from '../helpers/mfa.js'
import { SoftPasskey } from '../helpers/passkeys.js'
import { totpCode } from '../../src/services/mfa/totp.js'
import { startMailServer } from '../helpers/mail.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { registerProvenAccount, loginWithBody, loginWithCookies } from '../helpers/users.js'

const mail = await startMailServer(t)
// The tests' apps wait only after 50 failures; here, as deployed, after 5.
const { app, prisma, pool, database, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url, LOGIN_BACKOFF_AFTER_FAILURES: '5' } })

type Headers = Record<string, string>
const bearer = (accessToken: string): Headers => ({ authorization: `Bearer ${accessToken}` })

/** The three requests that give the account a new way in, each with `extra` in its body. */
const newWaysIn = {
  'an authenticator app': (headers: Headers, extra: object) => app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: extra }),
  'a passkey': (headers: Headers, extra: object) => app.inject({ method: 'POST', url: '/auth/passkeys/register/options', headers, payload: extra }),
  'another address': (headers: Headers, extra: object) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: `moved-${Math.random().toString(36).slice(2)}@example.com`, ...extra } })
}
const purposes = { 'an authenticator app': 'totp_setup', 'a passkey': 'passkey_registration', 'another address': 'email_change' }

/** What a new way in leaves behind: an unconfirmed app, a registration ceremony, a pending address. */
async function tracesOf (userId: string) {
  const user = await prisma.user.findUniqueOrThrow({ where: { id: userId }, select: { pendingEmail: true } })
  return {
    apps: await prisma.totpFactor.count({ where: { userId } }),
    ceremonies: await prisma.webauthnChallenge.count({ where: { purpose: 'registration', bindingId: { not: null } } }),
    pendingEmail: user.pendingEmail
  }
}

for (const [way, start] of Object.entries(newWaysIn)) {
  t.test(`${way}: a login's own fresh token without the password sets up nothing, and the password lets it through`, async t => {
    const account = await registerProvenAccount(app, prisma)
    // The login's own access token: fresh, as the thief who took it in its first minutes holds it.
    const stolen = bearer((await loginWithBody(app, account)).accessToken)
    const before = await tracesOf(account.user.id)

    const without = await start(stolen, {})
    t.equal(without.statusCode, 400, 'no password: 400')
    t.equal(without.json().code, 'VALIDATION_FAILED')
    t.match(without.json().message, /currentPassword/, 'naming the missing field')

    const wrong = await start(stolen, { currentPassword: 'the thief\'s guess' })
    t.equal(wrong.statusCode, 403, 'a wrong password: 403')
    t.equal(wrong.json().code, 'INVALID_CURRENT_PASSWORD')
    t.same(await tracesOf(account.user.id), before, 'nothing was started')
    const failures = await prisma.auditEvent.findMany({ where: { action: 'password.check_failed', subjectId: account.user.id }, select: { details: true, ip: true } })
    t.same(failures, [{ details: { during: purposes[way as keyof typeof purposes] }, ip: '127.0.0.1' }], 'the wrong password is audited, saying what it was asked for')

    const owner = await start(stolen, { currentPassword: account.password })
    t.equal(owner.statusCode, 200, 'the owner, who knows the password, goes on')
    t.notSame(await tracesOf(account.user.id), before, 'and the new way in is under way')
  })
}

t.test('the password is asked of a cookie session as of a Bearer one, and an empty body or none is refused', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { cookie } = await loginWithCookies(app, account)
  const browser = { cookie, origin: 'http://localhost:3000', 'sec-fetch-site': 'same-origin' }
  for (const url of ['/auth/mfa/totp', '/auth/passkeys/register/options']) {
    const none = await app.inject({ method: 'POST', url, headers: browser })
    t.equal(none.statusCode, 400, `${url}: no body`)
    t.equal(none.json().code, 'VALIDATION_FAILED')
    const stray = await app.inject({ method: 'POST', url, headers: browser, payload: { currentPassword: account.password, secret: 'mine' } })
    t.equal(stray.json().code, 'VALIDATION_FAILED', `${url}: nothing else is taken`)
    t.equal((await app.inject({ method: 'POST', url, headers: browser, payload: { currentPassword: account.password } })).statusCode, 200, `${url}: the password`)
  }
})

t.test('what is not a new way in asks no password: a username, the profile, and cancelling a change by sending the current address', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const patch = (payload: object) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload })
  const renamed = await patch({ username: `${account.username}_2`, profile: { displayName: 'Someone' } })
  t.equal(renamed.statusCode, 200)
  t.equal(renamed.json().username, `${account.username}_2`)

  const staged = await patch({ email: `next-${account.email}`, currentPassword: account.password })
  t.equal(staged.json().pendingEmail, `next-${account.email}`, 'a change staged with the password')
  const cancelled = await patch({ email: account.email })
  t.equal(cancelled.statusCode, 200, 'sending the current address cancels, with no password')
  t.equal(cancelled.json().pendingEmail, null)
  t.equal(cancelled.json().email, account.email)
})

t.test('a password sent without an email is refused, not ignored: the client must not believe a change was checked', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  for (const payload of [{ username: `${account.username}_r`, currentPassword: account.password }, { currentPassword: 'whatever' }]) {
    const refused = await app.inject({ method: 'PATCH', url: '/users/me', headers, payload })
    t.equal(refused.statusCode, 400, JSON.stringify(Object.keys(payload)))
    t.match(refused.json(), { code: 'VALIDATION_FAILED', message: /currentPassword.*email/ })
  }
  const me = await app.inject({ method: 'GET', url: '/users/me', headers })
  t.equal(me.json().username, account.username, 'nothing changed')
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.check_failed', subjectId: account.user.id } }), 0, 'nothing was checked')
})

// Regression: the route judged "the current address, a cancellation" before the
// user's row was locked; sent as the owner's link was followed, it staged the old address back,
// a link to it mailed, with no password.
t.test('a cancellation that meets the owner\'s confirmed change stages no address without the password', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = bearer((await loginWithBody(app, account)).accessToken)
  const thief = bearer((await loginWithBody(app, account)).accessToken)
  const moved = `moved-${account.email}`
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: owner, payload: { email: moved, currentPassword: account.password } })).statusCode, 200)
  const link = await mail.nextMail(moved, { subject: /^Confirm your new email address$/ })
  const [confirmed, cancelled] = await racedWhileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id]),
    waitingStatement: '%FROM "User" WHERE id = $1::uuid FOR UPDATE%'
  }, async () => await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: link.token } }),
  async () => await app.inject({ method: 'PATCH', url: '/users/me', headers: thief, payload: { email: account.email } }))
  t.equal(confirmed.statusCode, 204, 'the owner\'s change is confirmed')
  t.equal(cancelled.statusCode, 400, 'the old address, sent as a cancellation, is now a change: it needs the password')
  t.match(cancelled.json(), { code: 'VALIDATION_FAILED', message: /currentPassword/ })
  const user = await prisma.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { email: true, pendingEmail: true } })
  t.same(user, { email: moved, pendingEmail: null }, 'nothing staged')
  t.equal(await prisma.oneTimeToken.count({ where: { userId: account.user.id, purpose: 'email_change', usedAt: null } }), 0, 'no link lives')
})

// Regression: the budgets were spent before the password was checked, so three
// wrong tries (the owner's typos, or a thief's) kept the owner from changing the address, or
// having a link sent again, for the budget's window.
t.test('an email change refused for its password spends none of the account\'s mail budget', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { SMTP_URL: mail.url, RATE_LIMIT_MAIL_ACCOUNT: '2/3600', RATE_LIMIT_MAIL: '50/3600' } })
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const change = (payload: object) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: `next-${account.email}`, ...payload } })
  for (let i = 0; i < 3; i++) {
    t.equal((await change({})).statusCode, 400, `missing ${i + 1}`)
    t.equal((await change({ currentPassword: `typo ${i}` })).statusCode, 403, `wrong ${i + 1}`)
  }
  t.equal((await change({ currentPassword: account.password })).statusCode, 200, 'the owner\'s change goes through')
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/resend', headers })).statusCode, 202, 'and a link can be sent again')
  t.equal((await change({ currentPassword: account.password })).statusCode, 429, 'the budget holds once spent')
})

t.test('wrong passwords count toward the account\'s login backoff, which then holds both the new ways in and the logins', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const ways = Object.values(newWaysIn)
  for (let i = 0; i < 5; i++) {
    const wrong = await (ways[i % ways.length] as typeof ways[number])(headers, { currentPassword: `guess ${i}` })
    t.equal(wrong.json().code, 'INVALID_CURRENT_PASSWORD', `guess ${i + 1}`)
  }
  const held = await newWaysIn['a passkey'](headers, { currentPassword: account.password })
  t.equal(held.statusCode, 429, 'even the right password waits now')
  t.ok(Number(held.headers['retry-after']) > 0, 'told how long')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(login.statusCode, 429, 'and so does a login: a stolen session is no faster way to guess the password')
})

t.test('an ended session is told so before any password is checked', async t => {
  const account = await registerProvenAccount(app, prisma)
  const session = await loginWithBody(app, account)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: session.refreshToken } })
  for (const [way, start] of Object.entries(newWaysIn)) {
    const refused = await start(bearer(session.accessToken), { currentPassword: account.password })
    t.equal(refused.json().code, 'AUTH_SESSION_REVOKED', way)
  }
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.check_failed', subjectId: account.user.id } }), 0)
})

// Regression: a set-up begun with the old password outlived a password
// change made on the same session, whose token a thief who knew the old password may hold.
t.test('a new password ends the set-ups the old one began: the app\'s and the passkey\'s', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const secret = await startEnrolment(app, headers, account.password)
  const options = await newWaysIn['a passkey'](headers, { currentPassword: account.password })
  t.equal(options.statusCode, 200)
  const changed = await app.inject({ method: 'POST', url: '/auth/password/change', headers, payload: { currentPassword: account.password, newPassword: 'the owner\'s new passphrase' } })
  t.equal(changed.statusCode, 204, 'changed on the very session that began them, which stays')

  const confirmed = await confirmEnrolment(app, headers, totpCode(secret, clock.now()))
  t.equal(confirmed.statusCode, 409, 'the app\'s set-up is gone')
  t.equal(confirmed.json().code, 'MFA_ENROLMENT_NOT_STARTED')
  const registered = await app.inject({ method: 'POST', url: '/auth/passkeys/register/verify', headers, payload: { response: new SoftPasskey().register(options.json()) } })
  t.equal(registered.statusCode, 400, 'and so is the passkey\'s ceremony')
  t.equal(registered.json().code, 'PASSKEY_CHALLENGE_EXPIRED')
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0)
  t.equal(await prisma.passkey.count({ where: { userId: account.user.id } }), 0)
})

// Regressions: the password was checked before the user's row was locked, and the
// set-up written after it without looking again; on two instances, a set-up begun with the old
// password started after the owner's change of it (an address staged for the thief, a passkey
// stored from a ceremony spent before the change ended it), and one begun before a sign-out
// everywhere was written after it, for a session already ended.
t.test('a new way in racing the owner\'s remedy on another instance is refused once the remedy commits first', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const shared = await createTestDatabase()
  t.teardown(shared.drop)
  const owners = await buildTestApp(t, { database: shared, env: { SMTP_URL: mail.url } })
  const thieves = await buildTestApp(t, { database: shared, env: { SMTP_URL: mail.url } })
  const waiters = async () => (await owners.pool.query('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\'')).rowCount
  type Begin = (headers: Headers, password: string) => Promise<() => Promise<LightMyRequestResponse>>
  const address: Begin = async (headers, password) => () => thieves.app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: `thief-${Math.random().toString(36).slice(2)}@example.com`, currentPassword: password } })
  const app: Begin = async (headers, password) => () => thieves.app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: password } })
  const passkeyOptions: Begin = async (headers, password) => () => thieves.app.inject({ method: 'POST', url: '/auth/passkeys/register/options', headers, payload: { currentPassword: password } })
  const passkeyBegunBefore: Begin = async (headers, password) => {
    const response = new SoftPasskey().register((await (await passkeyOptions(headers, password))()).json())
    return () => thieves.app.inject({ method: 'POST', url: '/auth/passkeys/register/verify', headers, payload: { response } })
  }
  const changeRefusal = { statusCode: 403, code: 'INVALID_CURRENT_PASSWORD' }
  const revoked = { statusCode: 401, code: 'AUTH_SESSION_REVOKED' }
  const races = [
    { remedy: 'a password change', url: '/auth/password/change', body: (password: string) => ({ currentPassword: password, newPassword: 'the owner\'s new passphrase' }), ways: { 'an address': [address, changeRefusal], 'an authenticator app': [app, changeRefusal], 'a passkey, its ceremony begun before': [passkeyBegunBefore, { statusCode: 400, code: 'PASSKEY_CHALLENGE_EXPIRED' }] } },
    { remedy: 'a sign-out everywhere', url: '/auth/logout-all', body: () => ({}), ways: { 'an address': [address, revoked], 'an authenticator app': [app, revoked], 'a passkey\'s ceremony': [passkeyOptions, revoked] } }
  ] as const
  for (const { remedy, url, body, ways } of races) {
    for (const [way, [begin, refusal]] of Object.entries(ways)) {
      const account = await registerProvenAccount(owners.app, owners.prisma)
      // The owner's own session, which a password change keeps, its token in the thief's hands too.
      const session = await loginWithBody(owners.app, account)
      const finish = await begin(bearer(session.accessToken), account.password)
      // The remedy queues on the user's row first, the set-up (its password checked) behind it.
      let setUp: ReturnType<typeof finish> | undefined
      const done = await whileHeld(shared.url, owners.pool, {
        hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR UPDATE', [account.user.id]),
        waitingStatement: '%"User"%',
        meanwhile: async () => {
          setUp = finish()
          await until('the set-up queued behind the remedy', async () => await waiters() === 2, 10_000)
        }
      }, async () => await owners.app.inject({ method: 'POST', url, headers: bearer(session.accessToken), payload: body(account.password) }))
      t.equal(done.statusCode, 204, `${remedy}, ${way}: the remedy`)
      t.match((await (setUp as ReturnType<typeof finish>)).json(), refusal, `${remedy}, ${way}: refused`)
      const user = await owners.prisma.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { pendingEmail: true } })
      const left = {
        pendingEmail: user.pendingEmail,
        apps: await owners.prisma.totpFactor.count({ where: { userId: account.user.id } }),
        passkeys: await owners.prisma.passkey.count({ where: { userId: account.user.id } }),
        ceremonies: await owners.prisma.webauthnChallenge.count({ where: { purpose: 'registration', bindingId: session.sessionId } })
      }
      t.same(left, { pendingEmail: null, apps: 0, passkeys: 0, ceremonies: 0 }, `${remedy}, ${way}: nothing begun outlived the remedy`)
    }
  }
})

t.test('every remedy ends the set-ups under way: a sign-out everywhere, an admin\'s sign-out or deactivation, a reset', async t => {
  const admin = await loginAsAdmin(app, prisma)
  type Account = Awaited<ReturnType<typeof registerProvenAccount>>
  const remedies = {
    'a sign-out everywhere': async (account: Account, headers: Headers) => await app.inject({ method: 'POST', url: '/auth/logout-all', headers }),
    'an admin\'s sign-out of every session': async (account: Account) => await app.inject({ method: 'POST', url: `/admin/users/${account.user.id}/sessions/revoke`, headers: admin.headers }),
    'an admin\'s deactivation': async (account: Account) => await app.inject({ method: 'PATCH', url: `/admin/users/${account.user.id}`, headers: admin.headers, payload: { isActive: false } }),
    'a reset': async (account: Account) => {
      await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
      const { token } = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
      return await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'a passphrase after the reset' } })
    }
  }
  for (const [remedy, apply] of Object.entries(remedies)) {
    const account = await registerProvenAccount(app, prisma)
    const session = await loginWithBody(app, account)
    const headers = bearer(session.accessToken)
    await startEnrolment(app, headers, account.password)
    t.equal((await newWaysIn['a passkey'](headers, { currentPassword: account.password })).statusCode, 200)
    t.ok((await apply(account, headers)).statusCode < 300, `${remedy} applied`)
    const left = { apps: await prisma.totpFactor.count({ where: { userId: account.user.id } }), ceremonies: await prisma.webauthnChallenge.count({ where: { purpose: 'registration', bindingId: session.sessionId } }) }
    t.same(left, { apps: 0, ceremonies: 0 }, `${remedy}: neither set-up is left`)
  }
})

// Regression: once the ceremony was spent under the user's row, after the response's
// verification, a response to no live ceremony was verified first (an attestation's cost, and
// its refusal said so rather than that the ceremony was gone); a refused one spends nothing.
t.test('a passkey response to no live ceremony of this session is refused before it is verified; a refused response leaves the ceremony', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const verify = (response: unknown) => app.inject({ method: 'POST', url: '/auth/passkeys/register/verify', headers, payload: { response } })
  const options = (await newWaysIn['a passkey'](headers, { currentPassword: account.password })).json()
  const unknown = await verify(new SoftPasskey().register(options, { challenge: Buffer.from('no such ceremony').toString('base64url'), origin: 'https://elsewhere.example' }))
  t.match(unknown.json(), { statusCode: 400, code: 'PASSKEY_CHALLENGE_EXPIRED' }, 'the ceremony is gone, whatever else is wrong')
  const elsewhere = await verify(new SoftPasskey().register(options, { origin: 'https://elsewhere.example' }))
  t.match(elsewhere.json(), { statusCode: 400, code: 'PASSKEY_ORIGIN_MISMATCH' })
  t.equal((await verify(new SoftPasskey().register(options))).statusCode, 201, 'the owner\'s own response, with the same ceremony, still registers')
  t.equal((await verify(new SoftPasskey().register(options))).json().code, 'PASSKEY_CHALLENGE_EXPIRED', 'once')
})

// Regression: new recovery codes took a fresh session alone; they stand in for the
// owner's app at the login's second step and a reset keeps them, so a login's stolen token made
// a lasting way round the app for whoever would learn the password.
t.test('new recovery codes need the password, and their notice says a reset keeps them', async t => {
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  await enrolTotp(app, headers, clock, account.password)
  const regenerate = (payload?: object) => app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers, ...(payload === undefined ? {} : { payload }) })
  t.equal((await regenerate()).json().code, 'VALIDATION_FAILED', 'no body')
  t.equal((await regenerate({})).json().code, 'VALIDATION_FAILED', 'no password')
  t.equal((await regenerate({ currentPassword: 'the thief\'s guess' })).json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal(await prisma.auditEvent.count({ where: { action: 'mfa.recovery_codes_regenerated', subjectId: account.user.id } }), 0, 'none made')
  const made = await regenerate({ currentPassword: account.password })
  t.equal(made.statusCode, 200)
  t.equal(made.json().recoveryCodes.length, 10)
  const notice = await mail.nextMail(account.email, { subject: /^New recovery codes$/ })
  t.match(notice.text, /reset it now, then sign in and make new recovery codes/, 'the remedy replaces them too')
})
