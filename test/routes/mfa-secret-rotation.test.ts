// Replacing AUTH_SECRET, as an operator does it: the service stopped, started again with the new secret. Without AUTH_SECRET_PREVIOUS a TOTP code
// is refused like a wrong one (never a 500); with it, codes keep working and every secret is sealed again under the new secret in the background,
// after which the new secret alone opens them. Nothing signed with the old secret is accepted either way.
import pino from 'pino'
import t from 'tap'
import { openSealed, openSecret, sealSecret } from '../../src/services/mfa/totp.js'
import { deriveKey } from '../../src/services/tokens/derived-keys.js'
import { buildTestApp, TEST_SECRET, type TestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { logCapture } from '../helpers/mail.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { until } from '../helpers/until.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'

const NEW_SECRET = 'the-new-root-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA-9876543210'
const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

const database = await createTestDatabase()
t.teardown(database.drop)

type Running = TestApp & { log: ReturnType<typeof logCapture> }

/** The service on the file's database, with `env`, for as long as `use` runs: one at a time, as the embedded database allows. */
async function running<T> (env: Record<string, string>, use: (service: Running) => Promise<T>): Promise<T> {
  const teardowns: Array<() => unknown> = []
  const log = logCapture()
  const built = await buildTestApp({ teardown: fn => teardowns.push(fn) }, { database, env, logger: pino({ level: 'info' }, log.stream) })
  try {
    return await use({ ...built, log })
  } finally {
    for (const teardown of teardowns.reverse()) await teardown()
  }
}

const afterRotation = { AUTH_SECRET: NEW_SECRET }

/** Accounts with TOTP set up under TEST_SECRET, and their sessions' tokens. */
async function enrolledAccounts (count: number) {
  return await running({}, async ({ app, prisma, clock }) => {
    const accounts = []
    for (let i = 0; i < count; i++) {
      const account = await registerProvenAccount(app, prisma)
      const tokens = await loginWithBody(app, account)
      accounts.push({ ...account, tokens, ...await enrolTotp(app, bearer(tokens.accessToken), clock, account.password) })
    }
    return accounts
  })
}

async function verifyWith ({ app }: TestApp, account: { email: string, password: string }, proof: { code: string } | { recoveryCode: string }) {
  const challenge = await startLogin(app, account)
  return app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenge.json().mfaToken, ...proof } })
}

/** The token of the last logged mail to `to` with `subject` (no SMTP_URL: mails are logged). */
async function loggedToken ({ log }: Running, to: string, subject: string): Promise<string> {
  let token: string | undefined
  await until(subject, () => {
    const mail = log.lines.map(line => line.mail as { to: string, subject: string, text: string } | undefined).findLast(mail => mail?.to === to && mail.subject === subject)
    token = mail === undefined ? undefined : /token=([\w-]+)/.exec(mail.text)?.[1]
    return token !== undefined
  })
  return token as string
}

// Regression: a link mailed before the secret was replaced kept working after it (its row was found
// by the token's hash alone): whoever had the old secret and a copy of the database could derive it.
t.test('AUTH_SECRET replaced: the links mailed under the old one no longer work, AUTH_SECRET_PREVIOUS or not, nor hold up a new one', async t => {
  const { account, verification, reset } = await running({}, async service => {
    const account = await registerAccount(service.app)
    const verification = await loggedToken(service, account.email, 'Confirm your email address')
    t.equal((await service.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })).statusCode, 202)
    return { account, verification, reset: await loggedToken(service, account.email, 'Reset your password') }
  })
  for (const env of [afterRotation, { ...afterRotation, AUTH_SECRET_PREVIOUS: TEST_SECRET }]) {
    await running(env, async service => {
      const label = 'AUTH_SECRET_PREVIOUS' in env ? 'with the previous secret' : 'alone'
      const verify = await service.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: verification } })
      t.equal(verify.json().code, 'VERIFICATION_TOKEN_INVALID', `${label}: the verification link`)
      const refused = await service.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: reset, password: 'a new passphrase for this one' } })
      t.equal(refused.json().code, 'RESET_TOKEN_INVALID', `${label}: the reset link`)
    })
  }
  // Regression: the voided link still counted as one sent in the last five minutes, so the login's reminder waited.
  await running({ ...afterRotation, REQUIRE_EMAIL_VERIFICATION: 'true' }, async service => {
    const refused = await service.app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
    t.equal(refused.json().code, 'EMAIL_NOT_VERIFIED')
    const reminder = await loggedToken(service, account.email, 'Confirm your email address')
    t.equal((await service.app.inject({ method: 'POST', url: '/auth/email/verify', payload: { token: reminder } })).statusCode, 204, 'a login refused at once mails a link that works')
  })
  await running(afterRotation, async service => {
    await service.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: account.email } })
    const fresh = await loggedToken(service, account.email, 'Reset your password')
    t.equal((await service.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: fresh, password: 'a new passphrase for this one' } })).statusCode, 204, 'a link asked for after it works')
  })
})

t.test('AUTH_SECRET replaced alone: a code is refused like a wrong one, the operator is told, a recovery code signs in', async t => {
  const [account] = await enrolledAccounts(1)
  if (account === undefined) throw new Error('no account')
  await running(afterRotation, async service => {
    const refused = await verifyWith(service, account, { code: nextCode(account.secret, service.clock) })
    t.equal(refused.statusCode, 401, 'as a wrong code is, not a 500')
    t.equal(refused.json().code, 'MFA_CODE_INVALID')
    t.ok(service.log.lines.some(line => line.level === 50 && /opens with neither AUTH_SECRET nor AUTH_SECRET_PREVIOUS/.test(String((line.err as { message?: string } | undefined)?.message))), 'logged as an error')
    t.equal((await verifyWith(service, account, { recoveryCode: account.recoveryCodes[0] as string })).statusCode, 200, 'a recovery code still works')
  })
})

t.test('nothing signed with the replaced secret is accepted, AUTH_SECRET_PREVIOUS or not', async t => {
  const [account] = await enrolledAccounts(1)
  if (account === undefined) throw new Error('no account')
  await running({ ...afterRotation, AUTH_SECRET_PREVIOUS: TEST_SECRET }, async ({ app }) => {
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(account.tokens.accessToken) })
    t.match({ status: me.statusCode, ...me.json() }, { status: 401, code: 'AUTH_TOKEN_INVALID' }, 'an access token it signed')
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: account.tokens.refreshToken } })
    t.match({ status: refresh.statusCode, ...refresh.json() }, { status: 401, code: 'AUTH_REFRESH_INVALID' }, 'a refresh token it derived')
  })
})

t.test('with AUTH_SECRET_PREVIOUS: codes work at once, every secret is sealed again, then AUTH_SECRET alone opens them', async t => {
  const [first, second] = await enrolledAccounts(2)
  if (first === undefined || second === undefined) throw new Error('no accounts')
  const oldKey = deriveKey(TEST_SECRET, 'totp-secret')
  const { lostId, rowsBefore } = await running({}, async ({ prisma }) => {
    // More than one batch of the pass (500 rows), straight into the table: the API would take minutes.
    const bulk = Array.from({ length: 510 }, (_, i) => ({ id: crypto.randomUUID(), email: `bulk-${i}-${crypto.randomUUID()}@example.com`, passwordHash: 'not a hash' }))
    await prisma.user.createMany({ data: bulk })
    await prisma.totpFactor.createMany({ data: bulk.map(user => ({ userId: user.id, sealedSecret: sealSecret(oldKey, user.id, 'JBSWY3DPEHPK3PXP'), confirmedAt: new Date() })) })
    // One that neither secret opens: left as it is, and counted.
    const lost = await prisma.user.create({ data: { email: `lost-${crypto.randomUUID()}@example.com`, passwordHash: 'not a hash' }, select: { id: true } })
    await prisma.totpFactor.create({ data: { userId: lost.id, sealedSecret: sealSecret(deriveKey('a third root secret, neither of the two', 'totp-secret'), lost.id, 'JBSWY3DPEHPK3PXP') } })
    return { lostId: lost.id, rowsBefore: await prisma.totpFactor.findMany({ select: { userId: true, sealedSecret: true } }) }
  })
  const stale = rowsBefore.filter(row => openSealed({ current: oldKey }, row.userId, row.sealedSecret) !== null)
  t.ok(stale.length > 500, `${stale.length} rows under the old secret`)

  const finished = /TOTP secret\(s\) sealed again under AUTH_SECRET, none left under the previous secret/
  await running({ ...afterRotation, AUTH_SECRET_PREVIOUS: TEST_SECRET }, async service => {
    t.equal((await verifyWith(service, first, { code: nextCode(first.secret, service.clock) })).statusCode, 200, 'a code works while the pass runs')
    await until('the pass to end', () => service.log.lines.some(line => finished.test(String(line.msg))))
    t.equal(service.log.lines.find(line => finished.test(String(line.msg)))?.resealed, stale.length, 'each sealed again once')
    t.match(service.log.lines.find(line => line.level === 40), { unreadable: 1, msg: /1 TOTP secret\(s\) open with neither secret/ })

    const newKey = deriveKey(NEW_SECRET, 'totp-secret')
    const rowsAfter = await service.prisma.totpFactor.findMany({ where: { userId: { not: lostId } }, select: { userId: true, sealedSecret: true } })
    t.ok(rowsAfter.every(row => openSecret(newKey, row.userId, row.sealedSecret).length > 0), 'every row opens with the new secret')
    const lostAfter = await service.prisma.totpFactor.findUnique({ where: { userId: lostId }, select: { userId: true, sealedSecret: true } })
    t.same(lostAfter, rowsBefore.find(row => row.userId === lostId), 'the unreadable row is untouched')
  })

  await running(afterRotation, async service => {
    t.equal((await verifyWith(service, second, { code: nextCode(second.secret, service.clock) })).statusCode, 200, 'the new secret alone opens it')
    t.notOk(service.log.lines.some(line => /AUTH_SECRET_PREVIOUS/.test(String(line.msg))), 'no pass without AUTH_SECRET_PREVIOUS')
  })
})
