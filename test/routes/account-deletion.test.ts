// DELETE /users/me: the password proves the caller; the user, profile, sessions and tokens go, other accounts stay.
import t from 'tap'
import { buildTestApp, TEST_SECRET } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { whileHeld } from '../helpers/locks.js'
import { startMailServer } from '../helpers/mail.js'
import { enrolTotp, startLogin } from '../helpers/mfa.js'
import { loginWithBody, loginWithCookies, newAccount, registerAccount, registerProvenAccount } from '../helpers/users.js'
import { createIdentifierKeys } from '../../src/services/sessions/login-throttle.js'
import { deriveKey } from '../../src/services/tokens/derived-keys.js'

const mail = await startMailServer(t)
const { app, prisma, pool, database, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })

const remove = (headers: Record<string, string>, payload: unknown) =>
  app.inject({ method: 'DELETE', url: '/users/me', headers, payload: payload as object })

async function rowsOf (userId: string) {
  const [users, profiles, sessions, tokens] = await Promise.all([
    prisma.user.count({ where: { id: userId } }),
    prisma.profile.count({ where: { userId } }),
    prisma.session.count({ where: { userId } }),
    prisma.oneTimeToken.count({ where: { userId } })
  ])
  return { users, profiles, sessions, tokens }
}

/** An account with something in every table: a profile, two sessions, a verification and a reset token. */
async function populatedAccount () {
  const account = await registerAccount(app)
  await mail.nextMail(account.email, { subject: /^Confirm your email address$/ })
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  await mail.nextMail(account.email, { subject: /^Reset your password$/ })
  const mobile = await loginWithBody(app, account)
  return { account, mobile }
}

t.test('deletes the account and everything of it, in every table; other accounts stay', async t => {
  const bystander = await populatedAccount()
  const { account, mobile } = await populatedAccount()
  const browser = await loginWithCookies(app, account)
  t.same(await rowsOf(account.user.id), { users: 1, profiles: 1, sessions: 2, tokens: 2 })
  const bystanderBefore = await rowsOf(bystander.account.user.id)

  const response = await remove({ cookie: browser.cookie, 'sec-fetch-site': 'same-origin' }, { password: account.password })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  t.equal(response.cookies.length, 2, 'both auth cookies cleared')
  t.ok(response.cookies.every(c => c.value === '' && c.maxAge === 0))

  t.same(await rowsOf(account.user.id), { users: 0, profiles: 0, sessions: 0, tokens: 0 }, 'nothing of the account is left')
  t.equal(await prisma.auditEvent.count({ where: { action: 'user.deleted', subjectId: account.user.id, ip: '127.0.0.1' } }), 1, 'audited, with the client address (regression: none)')
  t.same(await rowsOf(bystander.account.user.id), bystanderBefore, 'another account is untouched')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: mobile.refreshToken } })
  t.equal(refresh.statusCode, 401, 'its refresh tokens are dead')
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${mobile.accessToken}` } })
  t.equal(me.json().code, 'AUTH_SESSION_REVOKED')
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(login.json().code, 'AUTH_INVALID_CREDENTIALS')
  t.equal((await registerAccount(app, { email: account.email, password: account.password, username: account.username })).user.email, account.email, 'the address and username are free again')
})

t.test('a wrong password is 403 and deletes nothing', async t => {
  const { account, mobile } = await populatedAccount()
  const before = await rowsOf(account.user.id)
  const response = await remove({ authorization: `Bearer ${mobile.accessToken}` }, { password: 'not my password at all' })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'INVALID_CURRENT_PASSWORD')
  t.same(response.cookies, [])
  t.same(await rowsOf(account.user.id), before)
})

t.test('only a live session may delete; bad input is 400', async t => {
  const { account, mobile } = await populatedAccount()
  const anonymous = await remove({}, { password: account.password })
  t.equal(anonymous.statusCode, 401)
  // The last: past four times PASSWORD_MAX_LENGTH, the most a password may have as typed.
  for (const payload of [{}, { password: '' }, { password: 42 }, { password: account.password, confirm: true }, { password: 'x'.repeat(1025) }]) {
    const response = await remove({ authorization: `Bearer ${mobile.accessToken}` }, payload)
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.equal(response.json().code, 'VALIDATION_FAILED')
  }
  const noBody = await app.inject({ method: 'DELETE', url: '/users/me', headers: { authorization: `Bearer ${mobile.accessToken}` } })
  t.equal(noBody.statusCode, 400, 'the password is required')
  await prisma.session.updateMany({ where: { userId: account.user.id }, data: { revokedAt: new Date() } })
  const revoked = await remove({ authorization: `Bearer ${mobile.accessToken}` }, { password: account.password })
  t.equal(revoked.json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await rowsOf(account.user.id)).users, 1)
})

t.test('a password reset committed while a deletion checked against the old password waits: the account stays', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const { account, mobile } = await populatedAccount()
  const response = await whileHeld(database.url, pool, {
    // What a reset commits: a new hash, every session ended.
    hold: async holder => {
      await holder.query('UPDATE "User" SET "passwordHash" = $2 WHERE id = $1', [account.user.id, 'the reset password\'s hash'])
      await holder.query('UPDATE "Session" SET "revokedAt" = now() WHERE "userId" = $1', [account.user.id])
    },
    waitingStatement: '%"User"%'
  }, async () => await remove({ authorization: `Bearer ${mobile.accessToken}` }, { password: account.password }))
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await rowsOf(account.user.id)).users, 1, 'the account the owner took back is still there')
})

// Regression: a stranger's failed logins on the address outlived the account, and whoever
// registered it next waited at their first typo.
t.test('a deleted account\'s failed logins go with it, by the owner or an admin: the next account of the address or the name starts afresh', async t => {
  // The tests' apps wait only after 50 failures; here, as deployed, after 5.
  const { app, prisma } = await buildTestApp(t, { env: { LOGIN_BACKOFF_AFTER_FAILURES: '5' } })
  const remove = (headers: Record<string, string>, payload: unknown) => app.inject({ method: 'DELETE', url: '/users/me', headers, payload: payload as object })
  for (const by of ['the owner', 'an admin'] as const) {
    const account = await registerAccount(app)
    const login = (identifier: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })
    for (let i = 0; i < 4; i++) {
      t.equal((await login(account.email, 'a stranger\'s guess')).statusCode, 401)
      t.equal((await login(account.username, 'a stranger\'s guess')).statusCode, 401)
    }
    if (by === 'the owner') {
      const { accessToken } = await loginWithBody(app, account)
      // The owner's own login forgot them: a stranger's come back before the deletion.
      for (let i = 0; i < 4; i++) await login(account.email, 'a stranger\'s guess')
      t.equal((await remove({ authorization: `Bearer ${accessToken}` }, { password: account.password })).statusCode, 204)
    } else {
      const admin = await loginAsAdmin(app, prisma)
      t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers })).statusCode, 204)
    }
    const next = await registerAccount(app, { email: account.email, username: account.username, password: 'the next owner\'s passphrase' })
    for (const identifier of [account.email, account.username]) {
      t.equal((await login(identifier, 'a typo')).statusCode, 401, `${by}: the next owner's typo…`)
      t.equal((await login(identifier, next.password)).statusCode, 200, `${by}: …and no wait: ${identifier}`)
    }
  }
})

// Regression: the count of an account's wrong second-factor proofs outlived it, until it expired.
t.test('a deleted account\'s count of wrong second-factor proofs goes with it', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  await enrolTotp(app, { authorization: `Bearer ${accessToken}` }, clock, account.password)
  const { mfaToken } = (await startLogin(app, account)).json()
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, code: '000000' } })).statusCode, 401)
  const secondFactorKey = createIdentifierKeys(deriveKey(TEST_SECRET, 'identifier')).secondFactor(account.user.id)
  t.equal(await prisma.loginFailure.count({ where: { key: secondFactorKey } }), 1, 'counted')
  const admin = await loginAsAdmin(app, prisma)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers })).statusCode, 204)
  t.equal(await prisma.loginFailure.count({ where: { key: secondFactorKey } }), 0, 'gone with the account')
})

// Regression: the deletion cleared the counts of the address read before its transaction, so an
// email change confirmed meanwhile left the new address's behind for its next owner.
t.test('a deletion under way across a confirmed email change takes the failed logins of the address it deleted', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  // The tests' apps wait only after 50 failures; here, as deployed, after 5.
  const { app, pool, database } = await buildTestApp(t, { env: { LOGIN_BACKOFF_AFTER_FAILURES: '5' } })
  const login = (identifier: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const newEmail = newAccount().email
  // A stranger's guesses at the address the account moves to, one short of the wait.
  for (let i = 0; i < 4; i++) t.equal((await login(newEmail, 'a stranger\'s guess')).statusCode, 401)
  const response = await whileHeld(database.url, pool, {
    // What the confirmation of the change commits while the deletion checks the password: the new address.
    hold: async holder => await holder.query('UPDATE "User" SET email = $2, "pendingEmail" = NULL, "emailVerifiedAt" = now() WHERE id = $1', [account.user.id, newEmail]),
    waitingStatement: '%"User"%'
  }, async () => await app.inject({ method: 'DELETE', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: { password: account.password } }))
  t.equal(response.statusCode, 204)
  const next = await registerAccount(app, { ...newAccount(), email: newEmail })
  t.equal((await login(newEmail, 'a typo')).statusCode, 401, 'the next owner\'s typo…')
  t.equal((await login(newEmail, next.password)).statusCode, 200, '…and no wait')
})

t.test('a deletion mails the address the account had proven, saying who deleted it; an address never proven is mailed nothing more', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const deletedBy = {
    'the owner': async (account: { email: string, password: string }) => {
      const { accessToken } = await loginWithBody(app, account)
      return await remove({ authorization: `Bearer ${accessToken}` }, { password: account.password })
    },
    'an admin': async (account: { user: { id: string } }) =>
      await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers })
  }
  for (const [by, deleteIt] of Object.entries(deletedBy)) {
    const proven = await registerProvenAccount(app, prisma)
    await mail.nextMail(proven.email, { subject: /^Confirm your email address$/ })
    t.equal((await deleteIt(proven)).statusCode, 204)
    const notice = await mail.nextMail(proven.email, { subject: /^Your account was deleted$/ })
    t.match(notice.text, by === 'an admin' ? /^An administrator deleted your account/ : /^Your account and everything in it were deleted, from a session signed in to it/, by)
    t.equal(notice.link, undefined, `${by}: no link`)

    const unproven = await registerAccount(app)
    await mail.nextMail(unproven.email, { subject: /^Confirm your email address$/ })
    t.equal((await deleteIt(unproven)).statusCode, 204)
    t.equal(await prisma.outboxMail.count({ where: { recipient: unproven.email } }), 0, `${by}: nothing waits for an address never proven`)
    await t.rejects(mail.nextMail(unproven.email, { timeoutMs: 500 }), `${by}: and nothing was sent`)
  }
})

t.test('the last active admin cannot delete their own account (409 LAST_ADMIN); with another admin, they can', async t => {
  const admin = await loginAsAdmin(app, prisma)
  await prisma.user.updateMany({ where: { role: 'admin', id: { not: admin.user.id } }, data: { role: 'user' } })
  const refused = await remove(admin.headers, { password: admin.password })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'LAST_ADMIN')
  t.equal((await rowsOf(admin.user.id)).users, 1, 'the service keeps its admin')

  await loginAsAdmin(app, prisma)
  t.equal((await remove(admin.headers, { password: admin.password })).statusCode, 204)
  t.equal((await rowsOf(admin.user.id)).users, 0)
})

t.test('a promotion committed while a deletion checked the password counts: the last admin is kept (regression: the role was read before)', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  const admin = await loginAsAdmin(app, prisma)
  await prisma.user.updateMany({ where: { role: 'admin', id: { not: admin.user.id } }, data: { role: 'user' } })
  const { account, mobile } = await populatedAccount()
  const response = await whileHeld(database.url, pool, {
    // A handover committed while the deletion was under way: the user becomes admin, the last admin steps down.
    hold: async holder => {
      await holder.query('UPDATE "User" SET role = \'admin\' WHERE id = $1', [account.user.id])
      await holder.query('UPDATE "User" SET role = \'user\' WHERE id = $1', [admin.user.id])
    },
    waitingStatement: '%"User"%'
  }, async () => await remove({ authorization: `Bearer ${mobile.accessToken}` }, { password: account.password }))
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'LAST_ADMIN')
  t.equal(await prisma.user.count({ where: { role: 'admin', isActive: true } }), 1, 'an active admin is left')
})
