// Brute-force backoff per login identifier: doubling waits, a bounded lockout, the same 429 for every identifier, and reset lifts it.
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { dropConnectionOf, whileHeld } from '../helpers/locks.js'
import { startMailServer } from '../helpers/mail.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { loginWithBody, newAccount, registerAccount, registerProvenAccount } from '../helpers/users.js'
import { waitAfter } from '../../src/services/sessions/login-throttle.js'

const policy = { backoffAfter: 3, baseSeconds: 10, maxSeconds: 40, lockoutAfter: 7, lockoutSeconds: 3600 }
const env = {
  LOGIN_BACKOFF_AFTER_FAILURES: '3',
  LOGIN_BACKOFF_BASE_SECONDS: '10',
  LOGIN_BACKOFF_MAX_SECONDS: '40',
  LOGIN_LOCKOUT_AFTER_FAILURES: '7',
  LOGIN_LOCKOUT_SECONDS: '3600'
}

t.test('the waits: none, then doubling up to the maximum, then the lockout', async t => {
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 8].map(n => waitAfter(n, policy)), [0, 0, 0, 10, 20, 40, 40, 3600, 3600])
})

t.test('after repeated failures an identifier must wait, with the same answer whether or not an account uses it', async t => {
  const mail = await startMailServer(t)
  const { app, prisma, clock } = await buildTestApp(t, { env: { ...env, SMTP_URL: mail.url } })
  const account = await registerAccount(app)
  const attempt = (identifier: string, password = 'wrong password', remoteAddress = '127.0.0.1') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password }, remoteAddress })

  const answers = []
  for (const identifier of [account.email, 'nobody-here@example.com']) {
    for (let i = 0; i < 3; i++) t.equal((await attempt(identifier)).statusCode, 401)
    const waiting = await attempt(identifier, 'wrong password', '10.0.0.9')
    t.equal(waiting.statusCode, 429, 'the fourth attempt waits, from any ip')
    answers.push({ body: waiting.json(), retryAfter: waiting.headers['retry-after'], headers: Object.keys(waiting.headers).filter(h => h !== 'date' && h !== 'x-request-id').sort() })
  }
  t.same(answers[0], answers[1], 'identical for an account and for no account')
  t.match(answers[0], { body: { statusCode: 429, code: 'RATE_LIMITED' }, retryAfter: '10' })

  t.equal((await attempt(account.email.toUpperCase(), account.password)).statusCode, 429, 'the right password waits too, in any case')
  t.equal((await attempt(account.username)).statusCode, 401, 'the other identifier of the account has its own count')

  clock.advance(10)
  t.equal((await attempt(account.email)).statusCode, 401, 'after the wait, one more try')
  const next = await attempt(account.email)
  t.equal(next.headers['retry-after'], '20', 'the wait doubles')
  clock.advance(20)
  t.equal((await attempt(account.email, account.password)).statusCode, 200, 'the right password after the wait')
  clock.advance(1)
  for (let i = 0; i < 3; i++) t.equal((await attempt(account.email)).statusCode, 401, 'a success cleared the count')
  t.equal((await attempt(account.email)).statusCode, 429)
  t.equal((await attempt(account.username, account.password)).statusCode, 200)
  t.equal((await attempt(account.email)).statusCode, 401, 'a success by any identifier clears the counts of all the account\'s identifiers')

  const rows = await prisma.loginFailure.findMany()
  t.ok(rows.length > 0)
  t.notOk(JSON.stringify(rows).includes('@'), 'identifiers are not stored in clear')
})

// Regression: the key was an unkeyed SHA-256 of the identifier, which a word list reverses from a
// copy of the database or of Redis (passwords typed into the identifier field among them).
t.test('failures are counted under a key of AUTH_SECRET\'s: a copy of the database does not tell the identifier tried', async t => {
  const identifier = `hunter2-${randomBytes(4).toString('hex')}`
  const keysUnder = async (secret: string) => {
    const { app, prisma } = await buildTestApp(t, { env: { ...env, AUTH_SECRET: secret } })
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password: 'whatever it was' } })).statusCode, 401)
    return (await prisma.loginFailure.findMany({ select: { key: true } })).map(row => row.key)
  }
  const [first] = await keysUnder('a root secret of at least thirty-two bytes, the first')
  const [second] = await keysUnder('a root secret of at least thirty-two bytes, another')
  t.equal(typeof first, 'string', 'a failure counted')
  t.not(first, createHash('sha256').update(identifier).digest('base64url'), 'not the plain hash')
  t.not(first, second, 'another secret, another key')
})

// Regressions: one wrong password counted by an instance whose clock runs 20 s ahead refused
// the owner's right one on the other for 20 s; with the clock set back an hour since (an NTP
// step), for the hour. And, in a first fix, a failure stamped far ahead was a free try.
t.test('a failure stamped ahead of the clock: no wait below the backoff, and past it never a free try', async t => {
  const { app, clock } = await buildTestApp(t, { env })
  const account = await registerAccount(app)
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: account.email, password } })
  for (const ahead of [20, 3600]) {
    clock.advance(ahead)
    t.equal((await attempt('wrong password')).statusCode, 401)
    clock.advance(-ahead)
    t.equal((await attempt(account.password)).statusCode, 200, `${ahead} s ahead, below the backoff: no wait at all`)
  }
  clock.advance(20)
  for (let i = 0; i < 3; i++) t.equal((await attempt('wrong password')).statusCode, 401)
  clock.advance(-20)
  const waiting = await attempt(account.password)
  t.equal(waiting.statusCode, 429, 'past it, stamped ahead: the wait…')
  t.equal(waiting.headers['retry-after'], '10', '…its own, as if the failure were made now')
  clock.advance(3600 + 20)
  t.equal((await attempt('wrong password')).statusCode, 401)
  clock.advance(-3600)
  for (const password of ['wrong password', account.password]) {
    const refused = await attempt(password)
    t.equal(refused.statusCode, 429, 'an hour ahead (a clock set back since): still no free try')
    t.equal(refused.headers['retry-after'], '20')
  }
})

t.test('the lockout is bounded, the count goes on through it, and a password reset lifts it at once', async t => {
  const mail = await startMailServer(t)
  const { app, clock } = await buildTestApp(t, { env: { ...env, SMTP_URL: mail.url } })
  const account = await registerAccount(app)
  await mail.nextMail(account.email)
  const attempt = (password = 'wrong password') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password } })
  for (let failures = 0; failures < 7; failures++) {
    clock.advance(waitAfter(failures, policy))
    t.equal((await attempt()).statusCode, 401)
  }
  const locked = await attempt(account.password)
  t.equal(locked.statusCode, 429)
  t.equal(locked.headers['retry-after'], '3600', 'locked for LOGIN_LOCKOUT_SECONDS')
  clock.advance(3600)
  t.equal((await attempt()).statusCode, 401, 'the lock ends by itself')
  t.equal((await attempt(account.password)).headers['retry-after'], '3600', 'and the next failure locks again')

  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: /reset/i })
  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'a fresh passphrase 42' } })
  t.equal(reset.statusCode, 204, 'a locked account can always reset its password')
  t.equal((await attempt('a fresh passphrase 42')).statusCode, 200, 'and log in at once')
})

t.test('a rename takes the name\'s failed logins along, whoever renames (the owner or an admin): the account keeps its wait, away and back, and the next holder of the former name is not locked out (regression: locked for the lockout\'s length)', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env })
  const admin = await loginAsAdmin(app, prisma)
  const tag = Date.now().toString(36)
  for (const renamer of ['owner', 'admin'] as const) {
    const name = `${renamer === 'owner' ? 'ada' : 'bea'}${tag}`
    const holder = await registerAccount(app, { email: `${name}@example.com`, password: 'a passphrase of the holder', username: name })
    const headers = { authorization: `Bearer ${(await loginWithBody(app, holder)).accessToken}` }
    for (let failures = 0; failures < 7; failures++) {
      clock.advance(waitAfter(failures, policy))
      await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: name, password: 'wrong password' } })
    }
    const renamed = renamer === 'owner'
      ? await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username: `${name}x` } })
      : await app.inject({ method: 'PATCH', url: `/admin/users/${holder.user.id}`, headers: admin.headers, payload: { username: `${name}x` } })
    t.equal(renamed.statusCode, 200, `renamed by the ${renamer}`)
    const login = async (identifier: string, password: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })).statusCode
    t.equal(await login(`${name}x`, holder.password), 429, 'the account keeps its wait under the new name')
    if (renamer === 'owner') {
      t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username: name } })).statusCode, 200)
      t.equal(await login(name, holder.password), 429, 'and back under the former one')
      t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username: `${name}x` } })).statusCode, 200)
    }
    const next = await registerAccount(app, { email: `next-${name}@example.com`, password: 'a passphrase of the next', username: name })
    t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: name, password: next.password } })).statusCode, 200, `the next holder of a name renamed by the ${renamer} signs in`)
  }
})

t.test('a rename onto a name with failures of its own keeps the stricter of the two: an old, spent count prepared on it does not replace the account\'s lock (regression: the larger count won, whatever its age)', async t => {
  const { app, clock } = await buildTestApp(t, { env })
  const tag = Date.now().toString(36)
  const prepared = `cy${tag}`
  const fail = async (identifier: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password: 'wrong password' } })
  for (let failures = 0; failures < 7; failures++) {
    clock.advance(waitAfter(failures, policy))
    await fail(prepared)
  }
  clock.advance(3600 + 1)
  const holder = await registerAccount(app, { ...newAccount(), username: `dee${tag}` })
  const headers = { authorization: `Bearer ${(await loginWithBody(app, holder)).accessToken}` }
  for (let failures = 0; failures < 7; failures++) {
    clock.advance(waitAfter(failures, policy))
    await fail(`dee${tag}`)
  }
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username: prepared } })).statusCode, 200)
  const next = await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: prepared, password: holder.password } })
  t.equal(next.statusCode, 429, 'still locked under the prepared name')
  t.equal(next.headers['retry-after'], '3600', 'for the whole lock, counted from the account\'s last failure')
})

t.test('a rename onto a name with a count of its own keeps whichever wait ends later, as it is: no lock built from both, no forgotten count brought back (regression: the larger count with the later time)', async t => {
  const { app, clock } = await buildTestApp(t, { env })
  const tag = Date.now().toString(36)
  const fail = async (identifier: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password: 'wrong password' } })
  const login = async (identifier: string, password: string) => await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })
  for (const [what, prepare, afterward] of [['a lock with 600 s left', 3000, '600'], ['a count already forgotten', 40 + 3600 + 60, undefined]] as const) {
    const prepared = `${what === 'a lock with 600 s left' ? 'ev' : 'fo'}${tag}`
    for (let failures = 0; failures < 7; failures++) {
      clock.advance(waitAfter(failures, policy))
      await fail(prepared)
    }
    clock.advance(prepare)
    const holder = await registerAccount(app, { ...newAccount(), username: `${prepared}own` })
    const headers = { authorization: `Bearer ${(await loginWithBody(app, holder)).accessToken}` }
    await fail(`${prepared}own`)
    t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username: prepared } })).statusCode, 200)
    const next = await login(prepared, holder.password)
    if (afterward === undefined) t.equal(next.statusCode, 200, `${what}: no wait, the account's own count had none`)
    else t.same([next.statusCode, next.headers['retry-after']], [429, afterward], `${what}: only what is left of it`)
  }
})

t.test('an email change takes the former address\'s failed logins along: the account keeps its wait, and the next holder of the address is not locked out (regression: locked out)', async t => {
  const mail = await startMailServer(t)
  const { app, clock } = await buildTestApp(t, { env: { ...env, SMTP_URL: mail.url } })
  const holder = await registerAccount(app)
  await mail.nextMail(holder.email)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, holder)).accessToken}` }
  // Asked for before the failures: its password check waits out the account's wait too. The
  // address changes, and takes the failures along, when the link is followed.
  const moved = `moved-${holder.email}`
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: moved, currentPassword: holder.password } })).statusCode, 200)
  for (let failures = 0; failures < 7; failures++) {
    clock.advance(waitAfter(failures, policy))
    await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: holder.email, password: 'wrong password' } })
  }
  const { token } = await mail.nextMail(moved)
  t.equal((await app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token } })).statusCode, 204)
  const login = async (identifier: string, password: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })).statusCode
  t.equal(await login(moved, holder.password), 429, 'the account keeps its wait under its new address')
  const next = await registerAccount(app, { ...newAccount(), email: holder.email, password: 'a passphrase of the next holder' })
  t.equal(await login(holder.email, next.password), 200, 'the next holder of the former address signs in')
})

t.test('a password reset and the lifting of the wait commit together: one cut short changes nothing, and the same link then does both', {
  skip: (process.env.TEST_DATABASE_URL ?? '') === '' && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const mail = await startMailServer(t)
  const { app, pool, database } = await buildTestApp(t, { env: { ...env, SMTP_URL: mail.url } })
  const account = await registerAccount(app)
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password } })
  for (let i = 0; i < 3; i++) t.equal((await attempt('wrong password')).statusCode, 401)
  t.equal((await attempt(account.password)).statusCode, 429, 'backed off')
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: /reset/i })
  const newPassword = 'a fresh passphrase 42'
  const reset = async () => await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: newPassword } })
  const forgetting = '%DELETE FROM "public"."LoginFailure"%'
  const cut = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT key FROM "LoginFailure" FOR UPDATE'),
    waitingStatement: forgetting,
    meanwhile: dropConnectionOf(pool, forgetting)
  }, reset)
  t.equal(cut.statusCode, 503)
  t.equal((await reset()).statusCode, 204, 'the link was not spent')
  t.equal((await attempt(newPassword)).statusCode, 200, 'the new password logs in at once')
})

t.test('concurrent failures all count', async t => {
  const { app, prisma } = await buildTestApp(t, { env })
  await Promise.all(Array.from({ length: 6 }, () =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'race@example.com', password: 'wrong password' } })))
  const rows = await prisma.loginFailure.findMany()
  t.equal(rows.length, 1)
  t.ok((rows[0]?.failures ?? 0) >= 3, 'every evaluated attempt was counted')
  const statuses = await Promise.all(Array.from({ length: 3 }, () =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'RACE@example.com', password: 'wrong password' } }).then(r => r.statusCode)))
  t.same(statuses, [429, 429, 429])
})

t.test('attempts sent at once take their turns: a burst gets no more tries than one by one, even right after a lock ends', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env })
  const account = await registerAccount(app)
  const attempt = (password: string, i: number) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password }, remoteAddress: `10.1.0.${i}` }).then(r => r.statusCode)

  const sorted = (statuses: number[]) => [...statuses].sort((a, b) => a - b)
  const burst = await Promise.all(Array.from({ length: 8 }, async (_, i) => await attempt(`wrong password ${i}`, i)))
  t.same(sorted(burst), [401, 401, 401, 429, 429, 429, 429, 429], 'three tries, as the policy allows, then the wait')
  t.equal((await prisma.loginFailure.findFirstOrThrow()).failures, 3)

  // The lock just ended: the policy allows one try, and its failure locks again.
  await prisma.loginFailure.updateMany({ data: { failures: 7, lastFailureAt: new Date(clock.now().getTime() - 3601_000) } })
  const after = await Promise.all(Array.from({ length: 8 }, async (_, i) => await attempt(`wrong guess ${i}`, i)))
  t.same(sorted(after), [401, 429, 429, 429, 429, 429, 429, 429], 'one guess')
  t.equal(await attempt(account.password, 9), 429, 'and the identifier is locked again, for the right password too')
})

// Regression: a session could guess its password at a password change or account deletion with
// no wait at all, each try a password hash, while the login kept the same guesser to a few.
t.test('a wrong current password at a password change or account deletion counts toward the backoff, whose wait applies there too', async t => {
  const { app, prisma } = await buildTestApp(t, { env })
  const account = await registerAccount(app)
  const { accessToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).json()
  const headers = { authorization: `Bearer ${accessToken}` }
  const changePassword = (currentPassword: string) => app.inject({ method: 'POST', url: '/auth/password/change', headers, payload: { currentPassword, newPassword: 'a fresh passphrase to keep' } })
  const deleteAccount = (password: string) => app.inject({ method: 'DELETE', url: '/users/me', headers, payload: { password } })

  t.equal((await changePassword('wrong password 1')).json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal((await deleteAccount('wrong password 2')).json().code, 'INVALID_CURRENT_PASSWORD')
  t.equal((await changePassword('wrong password 3')).json().code, 'INVALID_CURRENT_PASSWORD')
  const waiting = await changePassword(account.password)
  t.equal(waiting.statusCode, 429, 'the right password waits too')
  t.equal(waiting.headers['retry-after'], '10')
  t.equal((await deleteAccount(account.password)).statusCode, 429)
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).statusCode, 429, 'and so does a login by the address')
  t.equal(await prisma.user.count({ where: { id: account.user.id } }), 1, 'nothing was deleted')
  const failed = await prisma.auditEvent.findMany({ where: { subjectId: account.user.id, action: 'password.check_failed' }, select: { details: true } })
  t.same(failed.map(e => (e.details as { during: string }).during).sort(), ['account_deletion', 'password_change', 'password_change'])
})

// Regression: the account's second-factor count was keyed by the HMAC of `second-factor:<id>`,
// and a login's by the HMAC of whatever identifier it named: a stranger who knew a user's id
// failed logins as `second-factor:<id>` and locked the user's second step and reauthentication
// by a factor for the lockout's length, which no password reset lifted.
t.test('failed logins naming `second-factor:<id>` (as a username or an identifier) count against that text only: the account\'s second step and reauthentication by a code do not wait', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env })
  for (const field of ['username', 'identifier']) {
    const victim = await registerProvenAccount(app, prisma)
    const { accessToken } = await loginWithBody(app, victim)
    const headers = { authorization: `Bearer ${accessToken}` }
    const { secret } = await enrolTotp(app, headers, clock, victim.password)

    const stranger = (remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { [field]: `second-factor:${victim.user.id}`, password: 'anything at all' }, remoteAddress })
    for (let failures = 0; failures < policy.lockoutAfter; failures++) {
      clock.advance(waitAfter(failures, policy))
      t.equal((await stranger(`10.7.0.${failures + 1}`)).statusCode, 401, `${field}: failure ${failures + 1}`)
    }
    const locked = await stranger('10.7.1.1')
    t.equal(locked.statusCode, 429, `${field}: the text itself is locked, as any identifier would be`)
    t.equal(locked.headers['retry-after'], String(policy.lockoutSeconds))

    const reauthenticated = await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload: { code: nextCode(secret, clock) } })
    t.equal(reauthenticated.statusCode, 200, `${field}: reauthentication by a code is not made to wait`)
    const challenge = await startLogin(app, victim)
    t.equal(challenge.statusCode, 200, `${field}: the password step is not made to wait`)
    t.equal(challenge.json().mfaRequired, true)
    const verified = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenge.json().mfaToken, code: nextCode(secret, clock) } })
    t.equal(verified.statusCode, 200, `${field}: the right code completes the sign-in at once`)
    t.ok(verified.json().accessToken)
  }
})
