// AUDIT_RETENTION_DAYS, SESSION_RETENTION_DAYS and UNVERIFIED_ACCOUNT_RETENTION_DAYS: what is past them (audit entries; ended sessions and mailed links; the addresses of email changes whose link ended; expired passkey challenges and failure counts; accounts never verified and left unused) is deleted at start and every hour, in batches, by every instance at once without conflict.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { PrismaClient } from '../../src/db/prisma.js'
import { abandonedEmailChangesClearing } from '../../src/services/accounts/user-store.js'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { readsOfIndex } from '../helpers/query-plans.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'
import { whileHeld } from '../helpers/locks.js'
import { until } from '../helpers/until.js'

const DAY_MS = 86_400_000

/** `count` entries written `daysAgo` days before `at`, tagged to be told apart. */
async function writeEntries (prisma: PrismaClient, at: Date, daysAgo: number, count: number, tag: string): Promise<void> {
  const createdAt = new Date(at.getTime() - daysAgo * DAY_MS)
  await prisma.auditEvent.createMany({ data: Array.from({ length: count }, () => ({ id: randomUUID(), action: 'login.failed', createdAt, details: { tag } })) })
}

const countTagged = async (prisma: PrismaClient, tag: string) => await prisma.auditEvent.count({ where: { details: { path: ['tag'], equals: tag } } })

t.test('a pass deletes every entry older than AUDIT_RETENTION_DAYS, past one batch, and nothing newer', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { AUDIT_RETENTION_DAYS: '30' } })
  // The start's own pass first: a pass asked for while one runs is that one.
  await app.retention.pass()
  await writeEntries(prisma, clock.now(), 31, 1200, 'old')
  await writeEntries(prisma, clock.now(), 29, 3, 'recent')
  t.equal((await app.retention.pass()).auditEntries, 1200, 'reports how many it deleted')
  t.equal(await countTagged(prisma, 'old'), 0, 'none older is left')
  t.equal(await countTagged(prisma, 'recent'), 3, 'the newer are kept')
  clock.advance(2 * 86_400)
  t.equal((await app.retention.pass()).auditEntries, 3, 'and go once they are old enough')
})

t.test('AUDIT_RETENTION_DAYS=0 keeps every entry', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { AUDIT_RETENTION_DAYS: '0' } })
  await writeEntries(prisma, clock.now(), 10_000, 2, 'ancient')
  t.equal((await app.retention.pass()).auditEntries, 0)
  t.equal(await countTagged(prisma, 'ancient'), 2)
})

t.test('each instance runs a pass when it starts; instances at once share the work, neither waits nor fails', async t => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await buildTestApp(t, { database, env: { AUDIT_RETENTION_DAYS: '0' } })
  await writeEntries(first.prisma, first.clock.now(), 400, 3, 'before-start')
  await writeEntries(first.prisma, first.clock.now(), 1, 1, 'kept')

  // The default, 365 days.
  const second = await buildTestApp(t, { database })
  await until('the start-up pass', async () => await countTagged(first.prisma, 'before-start') === 0)
  t.equal(await countTagged(first.prisma, 'kept'), 1)

  const third = await buildTestApp(t, { database })
  await writeEntries(first.prisma, first.clock.now(), 400, 3000, 'backlog')
  const [a, b] = (await Promise.all([second.app.retention.pass(), third.app.retention.pass()])).map(deleted => deleted.auditEntries) as [number, number]
  t.equal(a + b, 3000, `every entry deleted once (${a} + ${b})`)
  t.equal(await countTagged(first.prisma, 'backlog'), 0)
})

// Regression: a login deleted its own user's ended sessions, and a new link its user's dead
// ones, so a user who never came back had theirs (addresses, user agents) kept for ever; and
// expired failure counts waited for someone's next failed login.
t.test('a pass deletes the sessions and mailed links that ended more than SESSION_RETENTION_DAYS ago, and expired failure counts; nothing live or recent', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { SESSION_RETENTION_DAYS: '30' } })
  await app.retention.pass()
  const daysAgo = (days: number) => new Date(clock.now().getTime() - days * DAY_MS)
  const sessionsOf = async () => {
    const accounts = await Promise.all([0, 1, 2, 3].map(async () => await registerAccount(app)))
    await Promise.all(accounts.map(async account => await loginWithBody(app, account)))
    return await Promise.all(accounts.map(async account => await prisma.session.findFirstOrThrow({ where: { userId: account.user.id } })))
  }
  const [revokedLongAgo, expiredLongAgo, revokedLately, live] = await sessionsOf()
  await prisma.session.update({ where: { id: revokedLongAgo?.id }, data: { revokedAt: daysAgo(31) } })
  await prisma.session.update({ where: { id: expiredLongAgo?.id }, data: { idleExpiresAt: daysAgo(31) } })
  await prisma.session.update({ where: { id: revokedLately?.id }, data: { revokedAt: daysAgo(29) } })
  const links = await prisma.oneTimeToken.findMany({ take: 4, orderBy: { createdAt: 'asc' } })
  await prisma.oneTimeToken.update({ where: { id: links[0]?.id }, data: { usedAt: daysAgo(31) } })
  await prisma.oneTimeToken.update({ where: { id: links[1]?.id }, data: { expiresAt: daysAgo(31) } })
  await prisma.oneTimeToken.update({ where: { id: links[2]?.id }, data: { expiresAt: daysAgo(29) } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: 'someone-gone@example.com', password: 'a wrong password' } })
  await prisma.loginFailure.updateMany({ data: { expiresAt: daysAgo(1) } })

  t.match(await app.retention.pass(), { sessions: 2, links: 2, failureCounts: 1 })
  const kept = (await prisma.session.findMany({ select: { id: true } })).map(session => session.id)
  t.same(kept.sort(), [revokedLately?.id, live?.id].sort(), 'the recent and the live sessions stay')
  t.equal(await prisma.oneTimeToken.count({ where: { id: { in: links.map(link => link.id) } } }), 2, 'the recent and the live links stay')
  t.equal(await prisma.loginFailure.count(), 0)
  t.same(await app.retention.pass(), { auditEntries: 0, sessions: 0, links: 0, emailChanges: 0, passkeyChallenges: 0, failureCounts: 0, unverifiedAccounts: 0, totpSetUps: 0 }, 'a second pass finds nothing')
})

// Regression: the address of a change never confirmed stayed on the account for ever, shown to
// admins and mailed again by a resend a year later.
t.test('an email change whose link ended ends too: the pass clears the unproven address, and a resend no longer mails it', async t => {
  const { app, prisma, clock } = await buildTestApp(t)
  await app.retention.pass()
  const account = await registerProvenAccount(app, prisma)
  const headers = { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }
  const change = async (email: string) => await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email, currentPassword: account.password } })
  t.equal((await change('a.stranger@example.net')).statusCode, 200)
  const other = await registerProvenAccount(app, prisma)
  const otherHeaders = { authorization: `Bearer ${(await loginWithBody(app, other)).accessToken}` }
  t.equal((await app.inject({ method: 'PATCH', url: '/users/me', headers: otherHeaders, payload: { email: 'still.pending@example.net', currentPassword: other.password } })).statusCode, 200)
  await prisma.oneTimeToken.updateMany({ where: { userId: account.user.id, purpose: 'email_change' }, data: { expiresAt: new Date(clock.now().getTime() - 1000) } })

  const resend = await app.inject({ method: 'POST', url: '/auth/email/resend', headers })
  t.equal(resend.statusCode, 202)
  t.equal(await prisma.oneTimeToken.count({ where: { userId: account.user.id, email: 'a.stranger@example.net', expiresAt: { gt: clock.now() } } }), 0, 'no new link to the unproven address')
  t.match(await app.retention.pass(), { emailChanges: 1 })
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })).pendingEmail, null, 'the expired change is cleared')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: other.user.id } })).pendingEmail, 'still.pending@example.net', 'a change whose link works stays')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers })).json().pendingEmail, null)
})

// Regression: the clearing read every user each hour to find the few with a change pending.
t.test('the clearing of abandoned email changes reads the users with one by index, not every user', async t => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const reads = await readsOfIndex(database.url, abandonedEmailChangesClearing(new Date(), 1000), 'User_pendingEmail_idx')
  t.ok(reads.length > 0, 'User_pendingEmail_idx: the users with a change pending')
})

t.test('the pass sweeps expired passkey challenges, and the challenge sweep the login\'s, even with no request to do it', async t => {
  const { app, prisma, clock } = await buildTestApp(t)
  // The pass the app began at its start, over first: the rows below are the next one's.
  await app.retention.pass()
  const account = await registerAccount(app)
  const expired = new Date(clock.now().getTime() - 1000)
  await prisma.mfaChallenge.create({ data: { id: randomUUID(), userId: account.user.id, tokenHash: randomUUID(), throttleKey: 'k', expiresAt: expired } })
  await prisma.webauthnChallenge.create({ data: { challenge: randomUUID(), purpose: 'login', expiresAt: expired } })
  await prisma.webauthnChallenge.create({ data: { challenge: randomUUID(), purpose: 'login', expiresAt: new Date(clock.now().getTime() + 60_000) } })
  t.match(await app.retention.pass(), { passkeyChallenges: 1 })
  t.equal(await prisma.mfaChallenge.count(), 1, 'the login\'s are the other sweep\'s')
  t.equal(await app.retention.sweepChallenges(), 1)
  t.equal(await prisma.mfaChallenge.count(), 0)
  t.equal(await prisma.webauthnChallenge.count(), 1, 'the live one stays')
})

// Regression: a set-up never confirmed kept its sealed secret until the owner began or cancelled another.
t.test('the pass deletes the authenticator-app set-ups past their time to be confirmed, and no other factor', async t => {
  const { app, prisma, clock } = await buildTestApp(t)
  await app.retention.pass()
  const [abandoned, recent, confirmed] = [await registerAccount(app), await registerAccount(app), await registerAccount(app)]
  const at = clock.now().getTime()
  const old = new Date(at - 16 * 60_000)
  await prisma.totpFactor.create({ data: { userId: abandoned.user.id, sealedSecret: new Uint8Array(8), createdAt: old } })
  await prisma.totpFactor.create({ data: { userId: recent.user.id, sealedSecret: new Uint8Array(8), createdAt: new Date(at - 60_000) } })
  await prisma.totpFactor.create({ data: { userId: confirmed.user.id, sealedSecret: new Uint8Array(8), createdAt: old, confirmedAt: old } })
  t.match(await app.retention.pass(), { totpSetUps: 1 })
  t.same((await prisma.totpFactor.findMany({ select: { userId: true }, orderBy: { userId: 'asc' } })).map(f => f.userId), [recent.user.id, confirmed.user.id].sort(), 'a set-up still in time and a confirmed factor stay')
})

/** Moves an account's making and its mailed links `days` into the past, as if nothing had been done with it since. */
async function ageAccount (prisma: PrismaClient, at: Date, userId: string, days: number): Promise<void> {
  const then = new Date(at.getTime() - days * DAY_MS)
  await prisma.user.update({ where: { id: userId }, data: { createdAt: then } })
  await prisma.oneTimeToken.updateMany({ where: { userId }, data: { createdAt: then } })
}

t.test('UNVERIFIED_ACCOUNT_RETENTION_DAYS deletes an account never verified and unused that long, with an audit entry, and frees its address and name', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { UNVERIFIED_ACCOUNT_RETENTION_DAYS: '30' } })
  await app.retention.pass()
  const daysAgo = (days: number) => new Date(clock.now().getTime() - days * DAY_MS)
  const [abandoned, young, signedInLately, stillSignedIn, linkLately, proven, admin, deactivated] =
    await Promise.all(Array.from({ length: 8 }, async () => await registerAccount(app)))
  for (const account of [signedInLately, stillSignedIn]) await loginWithBody(app, account!)
  for (const account of [abandoned, signedInLately, stillSignedIn, linkLately, proven, admin, deactivated]) await ageAccount(prisma, clock.now(), account!.user.id, 31)
  await ageAccount(prisma, clock.now(), young!.user.id, 29)
  await prisma.session.updateMany({ where: { userId: signedInLately!.user.id }, data: { lastUsedAt: daysAgo(10), idleExpiresAt: daysAgo(3), revokedAt: daysAgo(3) } })
  await prisma.session.updateMany({ where: { userId: stillSignedIn!.user.id }, data: { lastUsedAt: daysAgo(40), createdAt: daysAgo(40) } })
  await prisma.oneTimeToken.updateMany({ where: { userId: linkLately!.user.id }, data: { createdAt: daysAgo(5) } })
  await prisma.user.update({ where: { id: proven!.user.id }, data: { emailVerifiedAt: daysAgo(31) } })
  await prisma.user.update({ where: { id: admin!.user.id }, data: { role: 'admin' } })
  await prisma.user.update({ where: { id: deactivated!.user.id }, data: { isActive: false } })
  // A reset link anyone can have sent is no sign of use (regression: one a month kept a squatter's account).
  const forgot = await app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: abandoned!.email } })
  t.equal(forgot.statusCode, 202)
  await until('the reset link issued', async () => await prisma.oneTimeToken.count({ where: { userId: abandoned!.user.id, purpose: 'password_reset' } }) === 1)
  // A guesser's failures at the abandoned address, which its next owner must not inherit.
  await app.inject({ method: 'POST', url: '/auth/login', payload: { identifier: abandoned!.email, password: 'not the password' } })
  t.equal(await prisma.loginFailure.count(), 1)

  t.match(await app.retention.pass(), { unverifiedAccounts: 1 })
  const left = (await prisma.user.findMany({ select: { id: true } })).map(user => user.id)
  t.notOk(left.includes(abandoned!.user.id), 'the abandoned account is gone')
  t.equal(left.length, 7, 'every other account stays')
  t.equal(await prisma.loginFailure.count(), 0, 'with the failure counts of its identifiers')
  const [entry] = await prisma.auditEvent.findMany({ where: { action: 'user.deleted' } })
  t.match(entry, { actorId: null, subjectId: abandoned!.user.id, details: { by: 'retention', email: abandoned!.email } })

  const again = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: abandoned!.email, username: abandoned!.username, password: 'a new owner\'s own passphrase' } })
  t.equal(again.statusCode, 201, 'the address and the name can be registered again')
  t.match(await app.retention.pass(), { unverifiedAccounts: 0 }, 'and the new account is young')
})

t.test('UNVERIFIED_ACCOUNT_RETENTION_DAYS=0, the default, keeps every account', async t => {
  const { app, prisma, clock } = await buildTestApp(t)
  const account = await registerAccount(app)
  await ageAccount(prisma, clock.now(), account.user.id, 10_000)
  t.match(await app.retention.pass(), { unverifiedAccounts: 0 })
  t.equal(await prisma.user.count({ where: { id: account.user.id } }), 1)
})

/** `count` accounts made directly, never verified, `days` before `at`. */
async function abandonedAccounts (prisma: PrismaClient, at: Date, days: number, count: number): Promise<void> {
  const createdAt = new Date(at.getTime() - days * DAY_MS)
  await prisma.user.createMany({ data: Array.from({ length: count }, (_, i) => ({ email: `abandoned-${i}-${randomUUID()}@example.com`, passwordHash: 'unused', createdAt })) })
}

t.test('instances at once delete abandoned accounts past one batch, each once', async t => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const env = { UNVERIFIED_ACCOUNT_RETENTION_DAYS: '7' }
  const first = await buildTestApp(t, { database, env })
  const second = await buildTestApp(t, { database, env })
  await Promise.all([first.app.retention.pass(), second.app.retention.pass()])
  await abandonedAccounts(first.prisma, first.clock.now(), 8, 2500)
  const [a, b] = (await Promise.all([first.app.retention.pass(), second.app.retention.pass()])).map(deleted => deleted.unverifiedAccounts) as [number, number]
  t.equal(a + b, 2500, `every account deleted once (${a} + ${b})`)
  t.equal(await first.prisma.user.count(), 0)
  t.equal(await first.prisma.auditEvent.count({ where: { action: 'user.deleted' } }), 2500, 'each with its entry')
})

const onServer = (process.env.TEST_DATABASE_URL ?? '') !== ''

t.test('an abandoned account a sign-in is opening a session for is skipped, and kept once the session is there', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { UNVERIFIED_ACCOUNT_RETENTION_DAYS: '30' } })
  await app.retention.pass()
  const account = await registerAccount(app)
  await ageAccount(prisma, clock.now(), account.user.id, 31)
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  let opened = () => {}
  const open = new Promise<void>(resolve => { opened = resolve })
  // A session's insert holds its user's row (the foreign key's lock) until it commits.
  const signIn = prisma.$transaction(async tx => {
    await tx.session.create({
      data: { userId: account.user.id, secretSalt: Buffer.alloc(16), idleExpiresAt: new Date(clock.now().getTime() + DAY_MS), absoluteExpiresAt: new Date(clock.now().getTime() + DAY_MS), lastUsedAt: clock.now() }
    })
    opened()
    await held
  }, { timeout: 20_000 })
  await open
  t.match(await app.retention.pass(), { unverifiedAccounts: 0 }, 'skipped, never waited for')
  release()
  await signIn
  t.match(await app.retention.pass(), { unverifiedAccounts: 0 }, 'kept: it was used')
  t.equal(await prisma.user.count({ where: { id: account.user.id } }), 1)
})

t.test('a login refused for its unproven address, whose account the pass deletes as it mails the reminder: the refusal, no 500', {
  skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const { app, pool, database } = await buildTestApp(t, { env: { REQUIRE_EMAIL_VERIFICATION: 'true' } })
  const account = await registerAccount(app)
  const response = await whileHeld(database.url, pool, {
    // What the pass commits for an abandoned account.
    hold: async holder => await holder.query('DELETE FROM "User" WHERE id = $1', [account.user.id]),
    waitingStatement: '%FROM "User" WHERE id = %FOR UPDATE%'
  }, async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } }))
  t.equal(response.statusCode, 403, response.body)
  t.equal(response.json().code, 'EMAIL_NOT_VERIFIED')
})
