// Requests under way while a remedy or the account's deletion commits. A sign-in across a
// remedy (the owner's logout-all, an admin's sign-out or removal of the factors) opens no
// session after it: every remedy that ends all of a user's sessions counts on the user's row
// (User.signOutGeneration), and a session opens only under the count its sign-in read. A
// request across the deletion answers as the catalogue says, never a 500 or another code.
import type pg from 'pg'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { loginStatement, racedWhileHeld, whileHeld } from '../helpers/locks.js'
import { startMailServer } from '../helpers/mail.js'
import { until } from '../helpers/until.js'
import { enrolTotp, startLogin } from '../helpers/mfa.js'
import { registerPasskey, type SoftPasskey } from '../helpers/passkeys.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, pool, database, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })
const onServer = database.poolSize > 1
const serverOnly = { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
const post = (url: string, payload?: object, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload }) })
const liveSessions = (userId: string) => prisma.session.count({ where: { userId, revokedAt: null } })
const generationOf = async (userId: string) => (await prisma.user.findUniqueOrThrow({ where: { id: userId } })).signOutGeneration
/** Another transaction holds the user's row, as a remedy or a deletion does while it writes. */
const holdingUser = (userId: string) => async (holder: pg.Client) => await holder.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [userId])
/** The statement of lockUser (src/services/accounts/user-store.ts) while it waits. */
const lockUserStatement = '%FROM "User" WHERE id = $1::uuid FOR UPDATE%'

async function accountWithPasskey () {
  const account = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, account)
  const passkey = await registerPasskey(app, bearer(tokens.accessToken), account.password, 'Laptop')
  return { ...account, passkey, headers: bearer(tokens.accessToken) }
}

async function passwordless (passkey: SoftPasskey) {
  const options = await post('/auth/passkeys/login/options')
  return await post('/auth/passkeys/login/verify', { response: passkey.assert(options.json()) })
}

t.test('every remedy that ends all of a user\'s sessions counts on the user\'s row', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  const counted = async (remedy: string, act: () => Promise<{ statusCode: number, body: string }>) => {
    const before = await generationOf(account.user.id)
    const answer = await act()
    t.ok(answer.statusCode < 300, `${remedy}: ${answer.statusCode} ${answer.body}`)
    t.equal(await generationOf(account.user.id), before + 1, remedy)
  }
  await counted('logout-all', () => post('/auth/logout-all', undefined, bearer(accessToken)))
  await counted('an admin\'s sign-out', () => post(`/admin/users/${account.user.id}/sessions/revoke`, undefined, admin.headers))
  const fresh = bearer((await loginWithBody(app, account)).accessToken)
  await enrolTotp(app, fresh, clock, account.password)
  await counted('an admin\'s removal of the factors', () => app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}/mfa`, headers: admin.headers }))
  const changing = bearer((await loginWithBody(app, account)).accessToken)
  await counted('a password change', () => post('/auth/password/change', { currentPassword: account.password, newPassword: 'a changed passphrase 17' }, changing))
  await post('/auth/password/forgot', { email: account.email })
  const { token } = await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  await counted('a password reset', () => post('/auth/password/reset', { token, password: 'a reset passphrase 17' }))
  await counted('a deactivation', () => app.inject({ method: 'PATCH', url: `/admin/users/${account.user.id}`, headers: admin.headers, payload: { isActive: false } }))
})

// Regression: the passkey's check read the account before the remedy, its session opened after it.
for (const remedy of ['the owner\'s logout-all', 'an admin\'s sign-out'] as const) {
  t.test(`a passwordless sign-in under way across ${remedy} opens no session`, serverOnly, async t => {
    const admin = await loginAsAdmin(app, prisma)
    const account = await accountWithPasskey()
    const signIn = await whileHeld(database.url, pool, {
      // The sign-in waits to record the passkey's use, its account read; the remedy commits meanwhile.
      hold: async holder => await holder.query('SELECT 1 FROM "Passkey" WHERE id = $1 FOR UPDATE', [account.passkey.id]),
      waitingStatement: '%UPDATE "public"."Passkey"%',
      meanwhile: async () => {
        const done = remedy === 'the owner\'s logout-all'
          ? await post('/auth/logout-all', undefined, account.headers)
          : await post(`/admin/users/${account.user.id}/sessions/revoke`, undefined, admin.headers)
        t.equal(done.statusCode, 204, remedy)
      }
    }, async () => await passwordless(account.passkey))
    t.equal(signIn.statusCode, 401, signIn.body)
    t.equal(signIn.json().code, 'AUTH_INVALID_CREDENTIALS')
    t.equal(await liveSessions(account.user.id), 0, 'no session outlives the remedy')
    t.equal((await passwordless(account.passkey)).statusCode, 200, 'a sign-in begun after it opens one, as before')
  })
}

// Regression: the second step met its challenge before the removal, and opened its session after it.
t.test('a login\'s second step under way across an admin\'s removal of the factors opens no session', serverOnly, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await registerProvenAccount(app, prisma)
  const { recoveryCodes } = await enrolTotp(app, bearer((await loginWithBody(app, account)).accessToken), clock, account.password)
  const { mfaToken } = (await startLogin(app, account)).json()
  const [secondStep, removal] = await racedWhileHeld(database.url, pool, {
    hold: holdingUser(account.user.id),
    waitingStatement: lockUserStatement
  },
  async () => await post('/auth/mfa/verify', { mfaToken, recoveryCode: recoveryCodes[0] }),
  async () => await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}/mfa`, headers: admin.headers }))
  t.equal(removal.statusCode, 204, removal.body)
  t.equal(secondStep.statusCode, 401, secondStep.body)
  t.equal(await liveSessions(account.user.id), 0, 'no session outlives the removal')
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0)
})

// Regression: the sign-out went on after the account's deletion and failed on its staged address (a 500).
t.test('the owner\'s logout-all under way across the account\'s deletion answers without an error', serverOnly, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  const [deletion, logoutAll] = await racedWhileHeld(database.url, pool, {
    hold: holdingUser(account.user.id),
    waitingStatement: '%"User"%'
  },
  async () => await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers }),
  async () => await post('/auth/logout-all', undefined, bearer(accessToken)))
  t.equal(deletion.statusCode, 204, deletion.body)
  t.equal(logoutAll.statusCode, 204, logoutAll.body)
  t.equal(await prisma.user.count({ where: { id: account.user.id } }), 0)
})

// Regression: a passkey gone with its account read as suspended, and the answer told a deleted account to use its password.
t.test('a passwordless sign-in under way across the account\'s deletion is refused as an unknown passkey', serverOnly, async t => {
  const account = await accountWithPasskey()
  const signIn = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "Passkey" WHERE id = $1 FOR UPDATE', [account.passkey.id]),
    waitingStatement: '%UPDATE "public"."Passkey"%',
    meanwhile: async holder => await holder.query('DELETE FROM "User" WHERE id = $1::uuid', [account.user.id])
  }, async () => await passwordless(account.passkey))
  t.equal(signIn.statusCode, 401)
  t.equal(signIn.json().code, 'PASSKEY_INVALID')
})

// Regression: a password change answered 403 INVALID_CURRENT_PASSWORD, a TOTP enrolment 409
// MFA_ALREADY_ENABLED and a resent link 500 when the account was deleted while they waited.
const acrossDeletion = [
  { request: 'a password change', proven: true, waitingStatement: '%UPDATE "public"."User"%', send: (headers: Record<string, string>, password: string) => post('/auth/password/change', { currentPassword: password, newPassword: 'a changed passphrase 23' }, headers) },
  { request: 'a TOTP enrolment', proven: true, waitingStatement: lockUserStatement, send: (headers: Record<string, string>, password: string) => post('/auth/mfa/totp', { currentPassword: password }, headers) },
  { request: 'a resent verification link', proven: false, waitingStatement: lockUserStatement, send: (headers: Record<string, string>) => post('/auth/email/resend', undefined, headers) }
]
for (const { request, proven, waitingStatement, send } of acrossDeletion) {
  t.test(`${request} under way across the account's deletion is 401 AUTH_SESSION_REVOKED`, serverOnly, async t => {
    const account = proven ? await registerProvenAccount(app, prisma) : await registerAccount(app)
    const headers = bearer((await loginWithBody(app, account)).accessToken)
    const answer = await whileHeld(database.url, pool, {
      hold: holdingUser(account.user.id),
      waitingStatement,
      meanwhile: async holder => await holder.query('DELETE FROM "User" WHERE id = $1::uuid', [account.user.id])
    }, async () => await send(headers, account.password))
    t.equal(answer.statusCode, 401, answer.body)
    t.equal(answer.json().code, 'AUTH_SESSION_REVOKED')
  })
}

// Regression: the remedy ended the sessions its statement's snapshot, taken before it waited for
// the user's row, saw; a login that committed meanwhile kept its session.
for (const remedy of ['the owner\'s logout-all', 'an admin\'s sign-out'] as const) {
  t.test(`a login that commits while ${remedy} waits for the user's row is ended by it`, serverOnly, async t => {
    const admin = await loginAsAdmin(app, prisma)
    const account = await registerProvenAccount(app, prisma)
    const { accessToken } = await loginWithBody(app, account)
    // A failure to forget, so that the login's statement, holding the user's row, waits on it.
    t.equal((await post('/auth/login', { email: account.email, password: 'not the password' })).statusCode, 401)
    const [login, done] = await racedWhileHeld(database.url, pool, {
      hold: async holder => await holder.query('SELECT 1 FROM "LoginFailure" FOR UPDATE'),
      waitingStatement: loginStatement
    },
    async () => await post('/auth/login', { email: account.email, password: account.password }),
    async () => remedy === 'the owner\'s logout-all'
      ? await post('/auth/logout-all', undefined, bearer(accessToken))
      : await post(`/admin/users/${account.user.id}/sessions/revoke`, undefined, admin.headers))
    t.equal(login.statusCode, 200, login.body)
    t.equal(done.statusCode, 204, done.body)
    t.equal(await liveSessions(account.user.id), 0, 'the login\'s session ended with the others')
    t.equal((await post('/auth/refresh', { refreshToken: login.json().refreshToken })).statusCode, 401)
  })
}

// Regression: the challenge was issued after a remedy that committed while the password was checked.
t.test('a password login of an account with a second factor across a remedy gets no challenge', serverOnly, async t => {
  const account = await registerProvenAccount(app, prisma)
  await enrolTotp(app, bearer((await loginWithBody(app, account)).accessToken), clock, account.password)
  const login = await whileHeld(database.url, pool, {
    hold: holdingUser(account.user.id),
    waitingStatement: '%INSERT INTO "MfaChallenge"%',
    // A remedy's count, as every remedy writes it (see the first test), committed while the password was checked.
    meanwhile: async holder => await holder.query('UPDATE "User" SET "signOutGeneration" = "signOutGeneration" + 1 WHERE id = $1::uuid', [account.user.id])
  }, async () => await startLogin(app, account))
  t.equal(login.statusCode, 401, login.body)
  t.equal(login.json().code, 'AUTH_INVALID_CREDENTIALS')
  t.equal(await prisma.mfaChallenge.count({ where: { userId: account.user.id } }), 0)
})

// Regression: the reset link was issued after a deactivation committed during the mail's
// rendering, and worked again once the account was reactivated; or after an email change, and
// went to the address the account had just left (reproduced here).
const changesWhileRendering = [
  { change: 'a deactivation', sql: 'UPDATE "User" SET "isActive" = false WHERE id = $1::uuid' },
  { change: 'an email change', sql: 'UPDATE "User" SET email = \'moved-\' || email WHERE id = $1::uuid' }
]
for (const { change, sql } of changesWhileRendering) {
  t.test(`a reset mail rendered across ${change} issues no link`, serverOnly, async t => {
    const account = await registerProvenAccount(app, prisma)
    await whileHeld(database.url, pool, {
      hold: holdingUser(account.user.id),
      waitingStatement: lockUserStatement,
      meanwhile: async holder => await holder.query(sql, [account.user.id])
    }, async () => {
      t.equal((await post('/auth/password/forgot', { email: account.email })).statusCode, 202)
    })
    await until('the mail to be taken off the outbox', async () => await prisma.outboxMail.count({ where: { recipient: account.email } }) === 0)
    t.equal(await prisma.oneTimeToken.count({ where: { userId: account.user.id, purpose: 'password_reset' } }), 0, 'no link')
  })
}

// Regression: a change of the factor waiting for the user's row went on after a remedy that ended its session.
for (const change of ['new recovery codes', 'the removal of the TOTP factor'] as const) {
  t.test(`${change} under way across the end of the caller's session changes nothing`, serverOnly, async t => {
    const account = await registerProvenAccount(app, prisma)
    const { accessToken, refreshToken } = await loginWithBody(app, account)
    await enrolTotp(app, bearer(accessToken), clock, account.password)
    const sessionId = refreshToken.split('.')[0] as string
    const codesOf = async () => (await prisma.recoveryCode.findMany({ where: { userId: account.user.id }, select: { codeHash: true }, orderBy: { codeHash: 'asc' } })).map(code => code.codeHash)
    const codes = await codesOf()
    const answer = await whileHeld(database.url, pool, {
      hold: holdingUser(account.user.id),
      waitingStatement: lockUserStatement,
      // What every remedy does to the session (a password change elsewhere, a sign-out everywhere).
      meanwhile: async holder => await holder.query('UPDATE "Session" SET "revokedAt" = now(), "revokedReason" = \'password_change\' WHERE id = $1::uuid', [sessionId])
    }, async () => change === 'new recovery codes'
      ? await post('/auth/mfa/recovery-codes', { currentPassword: account.password }, bearer(accessToken))
      : await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: bearer(accessToken) }))
    t.equal(answer.statusCode, 401, answer.body)
    t.equal(answer.json().code, 'AUTH_SESSION_REVOKED')
    t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 1, 'the factor stays')
    t.same(await codesOf(), codes, 'and its codes, the same ones')
  })
}
