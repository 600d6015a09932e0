// Admins and second factors: REQUIRE_MFA_FOR_ADMINS gates the admin API until a factor is proven; removing a user's factors; mfaEnabled.
import t from 'tap'
import { totpCode } from '../../src/services/mfa/totp.js'
import { passwordServiceFor } from '../../src/services/index.js'
import { createAdminAccounts } from '../../src/services/admin/first-admin.js'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { startMailServer } from '../helpers/mail.js'
import { until } from '../helpers/until.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { loginWithBody, newAccount, registerAccount, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, pool, clock, config, database } = await buildTestApp(t, { env: { SMTP_URL: mail.url, REQUIRE_MFA_FOR_ADMINS: 'true' } })
const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

// The account the admin CLI creates (`npm run admin:create`), through the service it calls.
const passwords = passwordServiceFor(config)
t.teardown(() => passwords.close())
const adminAccount = newAccount()
await createAdminAccounts({ prisma, sql: pool, passwords }).createAdmin(adminAccount)
const firstLogin = await loginWithBody(app, adminAccount)
let adminHeaders = bearer(firstLogin.accessToken)

t.test('an admin without a second factor gets 403 MFA_ENROLMENT_REQUIRED from every admin route, until they enrol', async t => {
  const someone = await registerAccount(app)
  const routes: Array<{ method: 'GET' | 'PATCH' | 'DELETE' | 'POST' | 'PUT', url: string, payload?: object }> = [
    { method: 'GET', url: '/admin/users' },
    { method: 'GET', url: `/admin/users/${someone.user.id}` },
    { method: 'PATCH', url: `/admin/users/${someone.user.id}`, payload: { role: 'admin' } },
    { method: 'DELETE', url: `/admin/users/${someone.user.id}` },
    { method: 'DELETE', url: `/admin/users/${someone.user.id}/mfa` },
    { method: 'POST', url: `/admin/users/${someone.user.id}/sessions/revoke` },
    { method: 'GET', url: '/admin/settings' },
    { method: 'PUT', url: '/admin/settings', payload: { accessTokenTtlSeconds: 60 } },
    { method: 'GET', url: '/admin/audit' }
  ]
  for (const route of routes) {
    const response = await app.inject({ ...route, headers: adminHeaders })
    t.equal(response.statusCode, 403, `${route.method} ${route.url}`)
    t.equal(response.json().code, 'MFA_ENROLMENT_REQUIRED')
  }
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: someone.user.id } })).role, 'user', 'nothing changed')

  const me = await app.inject({ method: 'GET', url: '/users/me', headers: adminHeaders })
  t.equal(me.statusCode, 200, 'the rest of the API is open to them')
  const { secret } = await enrolTotp(app, adminHeaders, clock, adminAccount.password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: adminHeaders })).statusCode, 200, 'the enrolling session proved the factor')

  const challenge = await startLogin(app, adminAccount)
  t.match(challenge.json(), { mfaRequired: true })
  const verified = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenge.json().mfaToken, code: nextCode(secret, clock) } })
  adminHeaders = bearer(verified.json().accessToken)
  t.equal((await app.inject({ method: 'GET', url: '/admin/settings', headers: adminHeaders })).statusCode, 200, 'and so does every later login')
})

t.test('a user is FORBIDDEN, not asked to enrol', async t => {
  const user = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, user)
  const response = await app.inject({ method: 'GET', url: '/admin/users', headers: bearer(accessToken) })
  t.equal(response.statusCode, 403)
  t.equal(response.json().code, 'FORBIDDEN')
})

t.test('admin user objects show mfaEnabled', async t => {
  const user = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, user)
  const before = await app.inject({ method: 'GET', url: `/admin/users/${user.user.id}`, headers: adminHeaders })
  t.equal(before.json().mfaEnabled, false)
  await enrolTotp(app, bearer(tokens.accessToken), clock, user.password)
  t.equal((await app.inject({ method: 'GET', url: `/admin/users/${user.user.id}`, headers: adminHeaders })).json().mfaEnabled, true)
  const list = await app.inject({ method: 'GET', url: `/admin/users?q=${encodeURIComponent(user.email)}`, headers: adminHeaders })
  t.match(list.json().items, [{ id: user.user.id, mfaEnabled: true }])
})

t.test('DELETE /admin/users/:id/mfa removes the factors, ends the sessions, mails the user and is audited', async t => {
  const user = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, user)
  await enrolTotp(app, bearer(tokens.accessToken), clock, user.password)
  const removed = await app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}/mfa`, headers: adminHeaders })
  t.equal(removed.statusCode, 204)
  t.equal(await prisma.totpFactor.count({ where: { userId: user.user.id } }), 0)
  t.equal(await prisma.recoveryCode.count({ where: { userId: user.user.id } }), 0)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.accessToken) })).json().code, 'AUTH_SESSION_REVOKED')
  t.equal(await prisma.session.count({ where: { userId: user.user.id, revokedReason: 'mfa_removed_by_admin' } }), 1)
  t.match((await mail.nextMail(user.email, { subject: /^Two-step sign-in is off$/ })).text, /An administrator removed the second factor/)
  t.match((await startLogin(app, user)).json(), { accessToken: String }, 'the password alone signs in')
  const audit = await prisma.auditEvent.findFirstOrThrow({ where: { subjectId: user.user.id, action: 'mfa.removed_by_admin' } })
  const adminRow = await prisma.user.findUniqueOrThrow({ where: { email: adminAccount.email } })
  t.match(audit, { actorId: adminRow.id, details: { removed: true } })

  const again = await app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}/mfa`, headers: adminHeaders })
  t.equal(again.statusCode, 204, 'idempotent')
  t.equal(mail.untaken(user.email).filter(m => m.subject === 'Two-step sign-in is off').length, 0, 'no second mail')
  const unknown = await app.inject({ method: 'DELETE', url: '/admin/users/00000000-0000-4000-8000-000000000000/mfa', headers: adminHeaders })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'NOT_FOUND')
  t.equal((await app.inject({ method: 'DELETE', url: '/admin/users/not-a-uuid/mfa', headers: adminHeaders })).statusCode, 400)
})

t.test('DELETE /admin/users/:id/mfa on an enrolment never confirmed: no factor removed, no session ended, no mail (regression: "two-step sign-in is off" to a user who never had it on)', async t => {
  const user = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, user)
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: bearer(tokens.accessToken), payload: { currentPassword: user.password } })).statusCode, 200, 'an enrolment begun, never confirmed')
  const removed = await app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}/mfa`, headers: adminHeaders })
  t.equal(removed.statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.accessToken) })).statusCode, 200, 'the session lives')
  const audit = await prisma.auditEvent.findFirstOrThrow({ where: { subjectId: user.user.id, action: 'mfa.removed_by_admin' } })
  t.match(audit, { details: { removed: false } })
  t.equal(await prisma.outboxMail.count({ where: { recipient: user.email, kind: 'mfa_disabled' } }), 0, 'no mail waiting')
  await t.rejects(mail.nextMail(user.email, { subject: /^Two-step sign-in is off$/, timeoutMs: 1000 }), 'and none sent')
})

t.test('an admin who removes their only factor loses the admin API on the sessions that proved it, until they enrol again', async t => {
  const admin = newAccount()
  await createAdminAccounts({ prisma, sql: pool, passwords }).createAdmin(admin)
  const headers = bearer((await loginWithBody(app, admin)).accessToken)
  await enrolTotp(app, headers, clock, admin.password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers })).statusCode, 204)
  const after = await app.inject({ method: 'GET', url: '/admin/users', headers })
  t.equal(after.statusCode, 403)
  t.equal(after.json().code, 'MFA_ENROLMENT_REQUIRED')
  await enrolTotp(app, headers, clock, admin.password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers })).statusCode, 200, 'a new factor, proven on this session, opens it again')
})

/** A new admin (of `password`) with an app set up on one session (`enrolling`) and proven at the login of another (`other`). */
async function adminProvingTheAppOnTwoSessions () {
  const admin = newAccount()
  await createAdminAccounts({ prisma, sql: pool, passwords }).createAdmin(admin)
  const enrolling = bearer((await loginWithBody(app, admin)).accessToken)
  const { secret } = await enrolTotp(app, enrolling, clock, admin.password)
  const challenge = await startLogin(app, admin)
  const other = bearer((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenge.json().mfaToken, code: nextCode(secret, clock) } })).json().accessToken)
  return { enrolling, other, password: admin.password }
}

// Regression: a session that had proven a factor since removed got the admin API back as soon
// as another factor was set up on another session, without ever proving it.
t.test('a session that proved a factor since removed stays refused when another is set up elsewhere', async t => {
  const { enrolling, other, password } = await adminProvingTheAppOnTwoSessions()
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: other })).statusCode, 200, 'the other session proved the factor at its login')
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: enrolling })).statusCode, 204)
  await enrolTotp(app, enrolling, clock, password)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: enrolling })).statusCode, 200, 'the session that proved the new factor')
  const stale = await app.inject({ method: 'GET', url: '/admin/users', headers: other })
  t.equal(stale.statusCode, 403, 'not the one that proved only the removed factor')
  t.equal(stale.json().code, 'MFA_ENROLMENT_REQUIRED')
})

// Regression: the rule compared the proof's time with the app's set-up, so a clock stepped back
// between the removal and the next app's set-up (or an instance running behind) let a proof of the
// removed app count for the new one.
t.test('a proof of a removed app does not count for the next app, whatever the clocks say', async t => {
  const { enrolling, other, password } = await adminProvingTheAppOnTwoSessions()
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: other })).statusCode, 200, 'the other session proved the app at its login')
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: enrolling })).statusCode, 204)
  clock.advance(-120)
  t.teardown(() => clock.advance(120))
  const next = await enrolTotp(app, enrolling, clock, password)
  const stale = await app.inject({ method: 'GET', url: '/admin/users', headers: other })
  t.equal(stale.statusCode, 403, 'the new app is set up at a time before the proof, and the proof still does not count')
  t.equal(stale.json().code, 'MFA_ENROLMENT_REQUIRED')
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: enrolling })).statusCode, 200, 'the session that proved the new app')
  const reauthenticated = await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: other, payload: { code: nextCode(next.secret, clock) } })
  t.equal(reauthenticated.statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: other })).statusCode, 200, 'and the other session once it proves a code of the new app')
})

t.test('an admin removing the factors while the user confirms one: both take the user\'s row first and take turns, and either order leaves a consistent account', async t => {
  // Held first, the factor's row used to let the admin's removal start, then the
  // confirmation: the two met on it with the session's row and the factor's taken in opposite
  // orders. An enrolment is no factor now, so the removal touches no factor's row before the
  // confirmation; it still waits its turn on the user's row.
  for (let round = 0; round < 5; round++) {
    const user = await registerProvenAccount(app, prisma)
    const headers = bearer((await loginWithBody(app, user)).accessToken)
    const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: user.password } })).json()
    const [removal, confirmation] = await Promise.all([
      app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}/mfa`, headers: adminHeaders }),
      app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code: totpCode(secret, clock.now()) } })
    ])
    t.equal(removal.statusCode, 204, `round ${round}: the removal`)
    const factors = await prisma.totpFactor.count({ where: { userId: user.user.id, confirmedAt: { not: null } } })
    const ended = await prisma.session.count({ where: { userId: user.user.id, revokedReason: 'mfa_removed_by_admin' } })
    t.equal(confirmation.statusCode, 200, `round ${round}: the confirmation`)
    // Confirmed first and removed after, or the removal found no factor and the confirmation followed.
    t.ok((factors === 0 && ended === 1) || (factors === 1 && ended === 0), `round ${round}: the factor and the session agree`)
  }
})

t.test('an admin removing the factors while a login\'s second step proves one: both take the challenge before the factor, never crosswise (regression: a deadlock)', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const user = await registerProvenAccount(app, prisma)
  await enrolTotp(app, bearer((await loginWithBody(app, user)).accessToken), clock, user.password)
  t.equal((await startLogin(app, user)).json().mfaRequired, true, 'a challenge is open')
  const [proved, removal] = await withClient(database.url, async holder => {
    await holder.query('BEGIN')
    // What the second step holds while it proves a code: its challenge's row.
    await holder.query('SELECT 1 FROM "MfaChallenge" WHERE "userId" = $1 FOR UPDATE', [user.user.id])
    const removing = app.inject({ method: 'DELETE', url: `/admin/users/${user.user.id}/mfa`, headers: adminHeaders })
    await until('the removal to wait', async () =>
      (await pool.query('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\'')).rowCount === 1, 5000)
    // Then what it writes: the factor's last step used.
    const proved = await holder.query('UPDATE "TotpFactor" SET "lastUsedStep" = "lastUsedStep" WHERE "userId" = $1', [user.user.id]).then(() => 'proved', (error: { code?: string }) => error.code)
    await holder.query(proved === 'proved' ? 'COMMIT' : 'ROLLBACK')
    return [proved, await removing] as const
  })
  t.equal(proved, 'proved', 'the second step writes its factor without a deadlock')
  t.equal(removal.statusCode, 204, 'then the removal goes through')
  t.equal(await prisma.totpFactor.count({ where: { userId: user.user.id } }), 0)
  t.equal(await prisma.mfaChallenge.count({ where: { userId: user.user.id, usedAt: null, expiresAt: { gt: clock.now() } } }), 0, 'the open challenge is voided with them')
})
