// POST /auth/password/forgot and /auth/password/reset, with mail through a real SMTP server.
import { createHash } from 'node:crypto'
import { pino } from 'pino'
import t from 'tap'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { whileHeld } from '../helpers/locks.js'
import { logCapture, startMailServer } from '../helpers/mail.js'
import { freePort } from '../helpers/net.js'
import { enrolTotp } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { loginWithBody, newAccount, proveAddress, registerAccount, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, clock, config } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })

const RESET = /^Reset your password$/
const forgot = (email: string) => app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })
const reset = (token: string | undefined, password: string) => app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password } })
const login = (email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })

async function resetTokenFor (email: string): Promise<string> {
  const response = await forgot(email)
  if (response.statusCode !== 202) throw new Error(`forgot: ${response.statusCode}`)
  const received = await mail.nextMail(email, { subject: RESET })
  return received.token as string
}

t.test('the whole flow: mail, link, new password, every session ended', async t => {
  const account = await registerAccount(app)
  const first = await loginWithBody(app, account)
  await loginWithBody(app, account)

  const response = await forgot(account.email.toUpperCase())
  t.equal(response.statusCode, 202)
  t.same(response.json(), { message: 'If an account uses this address, a password reset link is on its way.' })
  const received = await mail.nextMail(account.email, { subject: RESET })
  t.equal(received.from, `no-reply@${new URL(config.PUBLIC_URL).hostname}`)
  t.match(received.link, new RegExp(`^${config.PUBLIC_URL}/reset-password#token=[A-Za-z0-9_-]{43}$`), '256-bit base64url token in the link\'s fragment: out of every log')
  t.match(received.text, /30 minutes/)
  t.ok(received.html.includes(`href="${received.link}"`), 'the HTML carries the same link')
  const token = received.token as string
  const row = await prisma.oneTimeToken.findFirstOrThrow({ where: { userId: account.user.id, purpose: 'password_reset' } })
  t.equal(row.tokenHash, createHash('sha256').update(token).digest('hex'), 'only the SHA-256 is stored')
  t.equal(row.expiresAt.getTime() - row.createdAt.getTime(), 1800 * 1000)

  const newPassword = 'a brand new passphrase 42'
  const done = await reset(token, newPassword)
  t.equal(done.statusCode, 204)
  t.equal(done.body, '')
  t.equal((await login(account.email, account.password)).statusCode, 401, 'the old password fails')
  t.equal(await prisma.session.count({ where: { userId: account.user.id, revokedAt: null } }), 0, 'every session ended')
  t.equal(await prisma.session.count({ where: { userId: account.user.id, revokedReason: 'password_reset' } }), 2)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  t.equal(refresh.json().code, 'AUTH_REFRESH_REVOKED')

  const fresh = await login(account.email, newPassword)
  t.equal(fresh.statusCode, 200, 'the new password works')
  t.equal(fresh.json().user.emailVerified, true, 'the mailbox was proved: the address is verified')
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.reset', subjectId: account.user.id, ip: '127.0.0.1' } }), 1, 'audited, with the address of whoever used the link (regression: none)')
  const notice = await mail.nextMail(account.email, { subject: /^Your password was changed$/ })
  t.match(notice.text, /every session was signed out/)
  t.equal(notice.token, undefined, 'the notice carries no link')
})

// Regression: the mail an admin had sent told its reader that they had asked for it ("only the newest link you asked for", "If you did not ask for this").
t.test('the reset mail reads right whoever asked: the owner (forgot) or an admin', async t => {
  const owner = await registerAccount(app)
  const admin = await loginAsAdmin(app, prisma)
  t.equal((await forgot(owner.email)).statusCode, 202)
  const asked = await mail.nextMail(owner.email, { subject: RESET })
  t.equal((await app.inject({ method: 'POST', url: `/admin/users/${owner.user.id}/password-reset`, headers: admin.headers })).statusCode, 202)
  const sent = await mail.nextMail(owner.email, { subject: RESET })
  for (const received of [asked, sent]) {
    t.notMatch(received.text, /you asked|did not ask|Someone/, 'nothing that says who asked')
    t.match(received.text, 'A password reset was requested for your account.')
    t.match(received.text, 'The link works once, for 30 minutes, until a newer reset link is sent.')
    t.match(received.text, 'If you do not want to change your password, ignore this mail: it stays as it is.')
  }
  t.equal((await reset(asked.token, 'a brand new passphrase 42')).statusCode, 400, 'the admin\'s link replaced the one asked for before')
  t.equal((await reset(sent.token, 'a brand new passphrase 42')).statusCode, 204)
})

// Regression: a flood of reset mails showed neither on the owner's activity nor in the trail.
t.test('a reset asked for with forgot is audited as its mail goes out: on the owner\'s activity, with the address it came from; an admin\'s once, as sent', async t => {
  const owner = await registerAccount(app)
  const admin = await loginAsAdmin(app, prisma)
  const unknown = newAccount().email
  const asked = await app.inject({ method: 'POST', url: '/auth/password/forgot', remoteAddress: '203.0.113.9', payload: { email: owner.email } })
  t.equal(asked.statusCode, 202)
  await mail.nextMail(owner.email, { subject: RESET })
  t.equal((await forgot(unknown)).statusCode, 202)
  t.equal((await app.inject({ method: 'POST', url: `/admin/users/${owner.user.id}/password-reset`, headers: admin.headers })).statusCode, 202)
  await app.mailer.flush()
  const entries = await prisma.auditEvent.findMany({ where: { subjectId: owner.user.id, action: { in: ['password.reset_requested', 'password.reset_sent'] } }, orderBy: { createdAt: 'asc' } })
  t.match(entries, [{ action: 'password.reset_requested', actorId: null, ip: '203.0.113.9' }, { action: 'password.reset_sent', actorId: admin.user.id }], 'one entry each: the owner\'s as its mail went out, the admin\'s as it was asked')
  t.equal(entries.length, 2)
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.reset_requested', subjectId: null } }), 0, 'nothing about an address no account has')
  const { accessToken } = await loginWithBody(app, owner)
  const activity = (await app.inject({ method: 'GET', url: '/users/me/activity', headers: { authorization: `Bearer ${accessToken}` } })).json()
  t.match(activity.items.find((item: { action: string }) => item.action === 'password.reset_requested'), { by: null, ip: '203.0.113.9' }, 'the owner sees it, and where it came from')
})

t.test('a reset mail sent again after a failed attempt keeps its link and its one audit entry', async t => {
  const down = await buildTestApp(t, { env: { SMTP_URL: `smtp://127.0.0.1:${await freePort()}` } })
  const owner = await registerAccount(down.app)
  t.equal((await down.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: owner.email } })).statusCode, 202)
  const queued = () => down.prisma.outboxMail.findFirstOrThrow({ where: { recipient: owner.email, kind: 'password_reset' } })
  await down.app.mailer.flush()
  const first = await queued()
  t.match(first, { attempts: 1, tokenId: /./ }, 'the link issued at the first attempt, which failed')
  down.clock.advance(down.config.MAIL_RETRY_BASE_SECONDS)
  await down.app.mailer.flush()
  t.match(await queued(), { attempts: 2, tokenId: first.tokenId }, 'tried again, with the same link')
  t.equal(await down.prisma.auditEvent.count({ where: { subjectId: owner.user.id, action: 'password.reset_requested' } }), 1, 'audited once')
})

// Someone registers the owner's address first and tries to set up factors, to keep the account
// after the owner's reset (regression: the factors stayed, and with them the account).
t.test('whoever registered an address first sets up no second factor on it; a reset removes any set up before that rule', async t => {
  const preRegistered = await registerAccount(app)
  const intruder = await loginWithBody(app, preRegistered)
  const headers = { authorization: `Bearer ${intruder.accessToken}` }
  t.equal((await app.inject({ method: 'POST', url: '/auth/passkeys/register/options', headers, payload: { currentPassword: preRegistered.password } })).json().code, 'EMAIL_NOT_VERIFIED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: preRegistered.password } })).json().code, 'EMAIL_NOT_VERIFIED')

  // Factors on an unproven address, as an earlier release allowed: the reset is the first proof of the mailbox.
  await proveAddress(prisma, preRegistered.user.id)
  const passkey = await registerPasskey(app, headers, preRegistered.password)
  await enrolTotp(app, headers, clock, preRegistered.password)
  await prisma.user.update({ where: { id: preRegistered.user.id }, data: { emailVerifiedAt: null } })
  t.equal(await prisma.passkey.count({ where: { userId: preRegistered.user.id } }), 1)

  t.equal((await reset(await resetTokenFor(preRegistered.email), 'the owner\'s own passphrase')).statusCode, 204)
  const owner = await login(preRegistered.email, 'the owner\'s own passphrase')
  t.equal(owner.statusCode, 200, 'the owner logs in with the password alone')
  t.notOk(owner.json().mfaRequired)
  for (const table of ['passkey', 'totpFactor', 'recoveryCode'] as const) {
    t.equal(await (prisma[table] as { count: (args: object) => Promise<number> }).count({ where: { userId: preRegistered.user.id } }), 0, `no ${table} left`)
  }
  const options = await app.inject({ method: 'POST', url: '/auth/passkeys/login/options' })
  const passwordless = await app.inject({ method: 'POST', url: '/auth/passkeys/login/verify', payload: { response: passkey.assert(options.json()) } })
  t.equal(passwordless.statusCode, 401, 'the intruder\'s passkey no longer signs in')
  t.match(await prisma.auditEvent.findFirst({ where: { action: 'password.reset', subjectId: preRegistered.user.id } }), { details: { secondFactorsRemoved: true } })
  t.match((await mail.nextMail(preRegistered.email, { subject: /^Two-step sign-in is off$/ })).text, /second factor of your account was removed/)

  // A proven address keeps its factors through a reset: they are its owner's.
  const proven = await registerProvenAccount(app, prisma)
  await enrolTotp(app, { authorization: `Bearer ${(await loginWithBody(app, proven)).accessToken}` }, clock, proven.password)
  t.equal((await reset(await resetTokenFor(proven.email), 'a new passphrase for later')).statusCode, 204)
  t.match((await login(proven.email, 'a new passphrase for later')).json(), { mfaRequired: true })
})

t.test('an account whose address an older rule took (a local part past 64 characters) can still ask for a reset (regression: 400)', async t => {
  const account = await registerAccount(app)
  const older = `${'o'.repeat(70)}@example.com`
  await prisma.user.update({ where: { id: account.user.id }, data: { email: older } })
  t.equal((await forgot(older)).statusCode, 202)
  t.ok(await mail.nextMail(older, { subject: RESET }), 'the link is mailed to it')
})

t.test('a token works once', async t => {
  const account = await registerAccount(app)
  const token = await resetTokenFor(account.email)
  t.equal((await reset(token, 'first new passphrase')).statusCode, 204)
  const again = await reset(token, 'second new passphrase')
  t.equal(again.statusCode, 400)
  t.same(again.json(), { statusCode: 400, code: 'RESET_TOKEN_INVALID', error: 'Bad Request', message: 'This password reset link is invalid or was already used; ask for a new one' })
  t.equal((await login(account.email, 'first new passphrase')).statusCode, 200)
})

t.test('concurrent resets with one token: exactly one succeeds', async t => {
  const account = await registerAccount(app)
  const token = await resetTokenFor(account.email)
  const responses = await Promise.all(Array.from({ length: 5 }, (_, i) => reset(token, `concurrent passphrase ${i}`)))
  const statuses = responses.map(r => r.statusCode).sort()
  t.same(statuses, [204, 400, 400, 400, 400])
  for (const r of responses.filter(r => r.statusCode === 400)) t.equal(r.json().code, 'RESET_TOKEN_INVALID')
  const winner = responses.findIndex(r => r.statusCode === 204)
  t.equal((await login(account.email, `concurrent passphrase ${winner}`)).statusCode, 200, "the winner's password is the one set")
})

t.test('an expired token is refused, and changes nothing', async t => {
  const account = await registerAccount(app)
  const token = await resetTokenFor(account.email)
  clock.advance(1801)
  const response = await reset(token, 'too late passphrase')
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'RESET_TOKEN_EXPIRED')
  t.equal((await login(account.email, account.password)).statusCode, 200)
})

t.test('a newer link kills the older one', async t => {
  const account = await registerAccount(app)
  const older = await resetTokenFor(account.email)
  const newer = await resetTokenFor(account.email)
  t.not(older, newer)
  t.equal((await reset(older, 'from the older link')).json().code, 'RESET_TOKEN_INVALID')
  t.equal((await reset(newer, 'from the newer link')).statusCode, 204)
  const third = await resetTokenFor(account.email)
  t.equal((await reset(older, 'from the older link')).json().code, 'RESET_TOKEN_INVALID', 'still dead once its row is cleaned up')
  t.ok(await prisma.oneTimeToken.count({ where: { userId: account.user.id, purpose: 'password_reset' } }) <= 2, 'dead tokens do not pile up')
  t.equal((await reset(third, 'from the third link')).statusCode, 204)
})

t.test('a weak password is refused and the token still works', async t => {
  const account = await registerAccount(app)
  const token = await resetTokenFor(account.email)
  for (const password of ['password123', account.email.toUpperCase()]) {
    const response = await reset(token, password)
    t.equal(response.json().code, 'PASSWORD_TOO_WEAK', password)
  }
  t.equal((await reset(token, 'a good new passphrase')).statusCode, 204)
})

t.test('other tokens cannot reset a password', async t => {
  const account = await registerAccount(app)
  const verification = await mail.nextMail(account.email, { subject: /^Confirm your email address$/ })
  t.equal((await reset(verification.token, 'a good new passphrase')).json().code, 'RESET_TOKEN_INVALID', 'a verification token')
  for (const token of ['garbage', 'A'.repeat(43), verification.link as string]) {
    t.equal((await reset(token, 'a good new passphrase')).json().code, 'RESET_TOKEN_INVALID', token.slice(0, 20))
  }
})

t.test('unknown and deactivated accounts: the same answer, no mail', async t => {
  const known = await registerAccount(app)
  const inactive = await registerAccount(app)
  await prisma.user.update({ where: { id: inactive.user.id }, data: { isActive: false } })
  const unknown = newAccount().email
  const answers = await Promise.all([known.email, unknown, inactive.email].map(forgot))
  const shape = (r: typeof answers[number]) => ({ status: r.statusCode, body: r.body, type: r.headers['content-type'], cache: r.headers['cache-control'] })
  t.same(shape(answers[1] as typeof answers[number]), shape(answers[0] as typeof answers[number]), 'unknown address: same status, body and headers')
  t.same(shape(answers[2] as typeof answers[number]), shape(answers[0] as typeof answers[number]), 'deactivated account: same status, body and headers')
  await app.mailer.flush()
  t.ok(mail.untaken(known.email).some(m => RESET.test(m.subject)), 'the known account got its link')
  t.same(mail.untaken(unknown), [], 'no mail to an unknown address')
  t.same(mail.untaken(inactive.email).filter(m => RESET.test(m.subject)), [], 'no link for a deactivated account')
  t.equal(await prisma.oneTimeToken.count({ where: { userId: inactive.user.id, purpose: 'password_reset' } }), 0)
})

// Regression: the reset cleared the counts of the name read before its hashing, so a rename
// committed meanwhile (which takes the former name's failures along) kept its wait.
t.test('a reset under way across a rename lifts the wait of the name the account has now', {
  skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false
}, async t => {
  // The tests' apps wait only after 50 failures; here, as deployed, after 5.
  const { app, pool, database } = await buildTestApp(t, { env: { SMTP_URL: mail.url, LOGIN_BACKOFF_AFTER_FAILURES: '5' } })
  const login = (identifier: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { identifier, password } })
  const account = await registerAccount(app)
  await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  const { token } = await mail.nextMail(account.email, { subject: RESET })
  const renamed = newAccount().username
  // The failures the rename brings along: past the wait.
  for (let i = 0; i < 5; i++) t.equal((await login(renamed, 'a stranger\'s guess')).statusCode, 401)
  t.equal((await login(renamed, 'a stranger\'s guess')).statusCode, 429, 'the name waits')
  const newPassword = 'the owner takes it back 2026'
  const response = await whileHeld(database.url, pool, {
    // What the rename commits while the reset hashes the new password.
    hold: async holder => await holder.query('UPDATE "User" SET username = $2 WHERE id = $1', [account.user.id, renamed]),
    waitingStatement: '%FROM "User" WHERE id = $1::uuid FOR UPDATE%'
  }, async () => await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: newPassword } }))
  t.equal(response.statusCode, 204)
  t.equal((await login(renamed, newPassword)).statusCode, 200, 'a reset lifts any wait: the new name\'s too')
})

// On a server: while this transaction holds the User table, no lookup can finish, and the
// answer comes anyway (forgot only records the request). The embedded database has one
// connection, which the transaction holds: no statement at all could run there.
t.test('forgot answers before it looks the address up', { skip: process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === '' ? 'needs a server: the embedded database has one connection' : false }, async t => {
  const account = await registerAccount(app)
  await mail.nextMail(account.email, { subject: /^Confirm your email address$/ })
  await prisma.$transaction(async tx => {
    await tx.$executeRaw`LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE`
    for (const email of [account.email, newAccount().email]) {
      const response = await forgot(email)
      t.equal(response.statusCode, 202, 'answered while the lookup is blocked')
    }
    t.same(mail.untaken(account.email), [], 'nothing sent yet')
  })
  await mail.nextMail(account.email, { subject: RESET })
})

t.test('forgot answers in comparable time whether or not the account exists', async t => {
  const account = await registerAccount(app)
  const elapsed = async (email: string) => {
    const start = process.hrtime.bigint()
    await forgot(email)
    const time = Number(process.hrtime.bigint() - start)
    // Outside the measured time: the queued work of one request must not slow the next one.
    await app.mailer.flush()
    return time
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number
  const known: number[] = []
  const unknown: number[] = []
  // Interleaved and compared by median, so other load weighs on both alike.
  for (let i = 0; i < 9; i++) {
    known.push(await elapsed(account.email))
    unknown.push(await elapsed(newAccount().email))
  }
  // Generous bound: the answer does no per-account work at all; this only catches a regression to waiting for it.
  const ratio = median(known) / median(unknown)
  t.ok(ratio > 0.25 && ratio < 4, `known/unknown median ratio ${ratio.toFixed(2)}`)
})

t.test('bad input: 400 in the documented shape, nothing changed', async t => {
  const account = await registerAccount(app)
  const forgotCases: unknown[] = [{}, { email: '' }, { email: 'not-an-email' }, { email: 42 }, { email: account.email, extra: true }, { email: `${'a'.repeat(300)}@example.com` }]
  for (const payload of forgotCases) {
    const response = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: payload as object })
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request' })
  }
  const token = await resetTokenFor(account.email)
  const resetCases: unknown[] = [{}, { token }, { password: 'a good new passphrase' }, { token: '', password: 'a good new passphrase' },
    { token, password: 'short' }, { token, password: 'x'.repeat(257) }, { token: 5, password: 'a good new passphrase' },
    { token, password: 'a good new passphrase', email: account.email }, { token: 'x'.repeat(300), password: 'a good new passphrase' }]
  for (const payload of resetCases) {
    const response = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: payload as object })
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 60))
    t.equal(response.json().code, 'VALIDATION_FAILED')
  }
  t.equal((await login(account.email, account.password)).statusCode, 200, 'the password is unchanged')
  t.equal((await reset(token, 'a good new passphrase')).statusCode, 204, 'and the token unspent')
})

t.test('SMTP server down: forgot still answers 202 at once; the failure is logged without the token', async t => {
  const capture = logCapture()
  const logger = pino({ level: 'info' }, capture.stream)
  const down = await buildTestApp(t, { env: { SMTP_URL: `smtp://127.0.0.1:${await freePort()}` }, logger })
  const account = await registerAccount(down.app)
  const start = Date.now()
  const response = await down.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
  t.equal(response.statusCode, 202)
  t.ok(Date.now() - start < 2000, 'the answer does not wait for the mail server')
  await down.app.mailer.flush()
  const failures = capture.lines.filter(line => line.msg === 'mail not sent; will retry')
  t.equal(failures.length, 2, 'the verification mail and the reset mail both failed, and wait for another attempt')
  for (const failure of failures) t.match(failure, { level: 40, component: 'mail', domain: 'example.com', code: /^E[A-Z]+$/, attempts: 1, retryInSeconds: 30 })
  t.equal(await down.prisma.outboxMail.count(), 2, 'both still in the outbox')
  t.equal(await down.prisma.oneTimeToken.count({ where: { purpose: 'password_reset' } }), 1, 'the token was issued; only the sending failed')
  const logged = capture.text()
  t.notMatch(logged, /token=/, 'no link in the log')
  t.notOk(logged.includes(account.email), 'no address in the log')
})
