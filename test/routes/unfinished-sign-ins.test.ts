// A sign-in that stops at the second step tells the account's owner by mail once its challenge expires: someone has the password (ASVS 6.3.5).
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { startMailServer } from '../helpers/mail.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { loginWithBody, registerProvenAccount } from '../helpers/users.js'

const CHALLENGE_TTL_SECONDS = 300
const SUBJECT = /^Someone entered your password$/

const mail = await startMailServer(t)
const { app, prisma, clock, database } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })

/** An account with an authenticator app, and a session of it opened before any of the tests' sign-ins. */
async function enrolledAccount () {
  const account = await registerProvenAccount(app, prisma)
  const tokens = await loginWithBody(app, account)
  const enrolled = await enrolTotp(app, bearer(tokens.accessToken), clock, account.password)
  await mail.nextMail(account.email, { subject: /^Two-step sign-in is on$/ })
  return { ...account, ...enrolled, headers: bearer(tokens.accessToken) }
}

/** The password step of a login, stopped there: its challenge's token. */
async function stopAtSecondStep (account: { email: string, password: string }): Promise<string> {
  const started = await startLogin(app, account)
  if (started.json().mfaToken === undefined) throw new Error(`no challenge: ${started.body}`)
  return started.json().mfaToken as string
}

const noticesTo = async (userId: string) => await prisma.auditEvent.count({ where: { subjectId: userId, action: 'login.second_step_unfinished' } })
const queuedTo = async (email: string) => await prisma.outboxMail.count({ where: { recipient: email, kind: 'sign_in_unfinished' } })

t.test('a sign-in stopped at the second step: once its challenge expires, the owner is mailed and the activity shows it', async t => {
  const account = await enrolledAccount()
  const startedAt = clock.now()
  await stopAtSecondStep(account)
  // The minute the challenge is stamped with: the clock's before or after (it may cross into the next).
  const minutes = [startedAt, clock.now()].map(at => at.toISOString().slice(0, 16))
  t.equal(await app.retention.sweepChallenges(), 0, 'nothing before the challenge expires')
  t.equal(await queuedTo(account.email), 0)

  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  t.equal(await app.retention.sweepChallenges(), 1, 'the expired challenge is deleted')
  const notice = await mail.nextMail(account.email, { subject: SUBJECT })
  t.ok(minutes.some(minute => notice.text.includes(`began at ${minute.replace('T', ' ')} UTC with the right password`)), notice.text)
  t.match(notice.text, /If not, someone knows your password: change it now \(unless you have since\)/)
  t.equal(await prisma.mfaChallenge.count({ where: { userId: account.user.id } }), 0)

  const activity = (await app.inject({ method: 'GET', url: '/users/me/activity', headers: account.headers })).json()
  t.match(activity.items[0], { action: 'login.second_step_unfinished', by: null, ip: null })
  t.ok(minutes.includes(String(activity.items[0]?.details?.startedAt).slice(0, 16)), 'the activity says when it began')
  t.equal(await app.retention.sweepChallenges(), 0, 'a sweep again finds nothing, and mails nothing')
  t.equal(await noticesTo(account.user.id), 1)
})

t.test('wrong codes until the challenge dies are told too, at its expiry', async t => {
  const account = await enrolledAccount()
  const mfaToken = await stopAtSecondStep(account)
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, code: '000000' } })).json().code, 'MFA_CODE_INVALID')
  }
  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  await app.retention.sweepChallenges()
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }))
})

t.test('at most one notice an hour per account: a password holder stopping again and again does not fill the mailbox', async t => {
  const account = await enrolledAccount()
  await stopAtSecondStep(account)
  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  await app.retention.sweepChallenges()
  await mail.nextMail(account.email, { subject: SUBJECT })

  for (let i = 0; i < 3; i++) {
    await stopAtSecondStep(account)
    await stopAtSecondStep(account)
    clock.advance(CHALLENGE_TTL_SECONDS + 1)
    t.equal(await app.retention.sweepChallenges(), 2)
  }
  t.equal(await queuedTo(account.email), 0, 'none queued within the hour')
  t.equal(await noticesTo(account.user.id), 1)

  clock.advance(3600)
  await stopAtSecondStep(account)
  await stopAtSecondStep(account)
  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  await app.retention.sweepChallenges()
  await mail.nextMail(account.email, { subject: SUBJECT })
  t.equal(await noticesTo(account.user.id), 2, 'an hour later, one again for the two')
  t.same(mail.untaken(account.email).filter(m => SUBJECT.test(m.subject)), [])
})

t.test('no notice when the account signed in since (the owner\'s own second try), nor for a challenge met', async t => {
  const retried = await enrolledAccount()
  await stopAtSecondStep(retried)
  const mfaToken = await stopAtSecondStep(retried)
  t.equal((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, code: nextCode(retried.secret, clock) } })).statusCode, 200)

  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  t.equal(await app.retention.sweepChallenges(), 2, 'the abandoned and the met challenge')
  t.equal(await queuedTo(retried.email), 0)
  t.equal(await noticesTo(retried.user.id), 0)
})

// Regression: a sign-out everywhere deleted an intruder's challenge, and nobody was told that the password was known.
t.test('a challenge a remedy voids (a sign-out everywhere, a password change) is dead at once, and told at the next sweep', async t => {
  for (const remedy of ['logout-all', 'password change'] as const) {
    const account = await enrolledAccount()
    const mfaToken = await stopAtSecondStep(account)
    const done = remedy === 'logout-all'
      ? await app.inject({ method: 'POST', url: '/auth/logout-all', headers: account.headers })
      : await app.inject({ method: 'POST', url: '/auth/password/change', headers: account.headers, payload: { currentPassword: account.password, newPassword: 'a new and long passphrase 42' } })
    t.equal(done.statusCode, 204, `${remedy}: ${done.body}`)
    const late = await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken, code: nextCode(account.secret, clock) } })
    t.equal(late.json().code, 'MFA_CHALLENGE_EXPIRED', `${remedy}: the challenge is dead`)
    t.equal(await app.retention.sweepChallenges(), 1, `${remedy}: swept at once, not at its expiry`)
    t.ok(await mail.nextMail(account.email, { subject: SUBJECT }), `${remedy}: the owner is told`)
  }
})

// Regression: one transaction for the whole backlog passed the statement timeout at a few
// thousand accounts, rolled back, and failed again every minute, telling nobody.
t.test('a backlog of expired challenges is worked off in batches, each account told once', async t => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  // A short statement timeout, which the one transaction of before passed at this backlog.
  const { app, prisma } = await buildTestApp(t, { database, env: { DATABASE_QUERY_TIMEOUT_SECONDS: '2' } })
  const accounts = 5000
  await prisma.$executeRawUnsafe(`INSERT INTO "User" (id, email, "passwordHash", "updatedAt") SELECT gen_random_uuid(), 'backlog-' || n || '@example.com', 'x', now() FROM generate_series(1, ${accounts}) n`)
  await prisma.$executeRawUnsafe('INSERT INTO "MfaChallenge" (id, "userId", "tokenHash", "throttleKey", "expiresAt", "createdAt") SELECT gen_random_uuid(), id, \'hash-\' || id, \'k\', now() - interval \'1 hour\', now() - interval \'1 hour\' FROM "User" WHERE email LIKE \'backlog-%\'')
  const started = Date.now()
  t.equal(await app.retention.sweepChallenges(), accounts)
  t.comment(`swept in ${Date.now() - started} ms`)
  t.equal(await prisma.mfaChallenge.count(), 0)
  t.equal(await prisma.auditEvent.count({ where: { action: 'login.second_step_unfinished' } }), accounts)
})

// Nothing lost under faults: the challenge's deletion and its mail commit together.
t.test('a sweep whose mail cannot be queued deletes nothing; the next one mails', async t => {
  const account = await enrolledAccount()
  await stopAtSecondStep(account)
  clock.advance(CHALLENGE_TTL_SECONDS + 1)
  await prisma.$executeRawUnsafe('CREATE FUNCTION refuse_mail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION \'outbox unavailable\'; END $$')
  await prisma.$executeRawUnsafe('CREATE TRIGGER refuse_mail BEFORE INSERT ON "OutboxMail" FOR EACH ROW EXECUTE FUNCTION refuse_mail()')
  await t.rejects(app.retention.sweepChallenges())
  t.equal(await prisma.mfaChallenge.count({ where: { userId: account.user.id } }), 1, 'the challenge is kept')
  t.equal(await noticesTo(account.user.id), 0)
  await prisma.$executeRawUnsafe('DROP TRIGGER refuse_mail ON "OutboxMail"')
  await prisma.$executeRawUnsafe('DROP FUNCTION refuse_mail()')
  t.equal(await app.retention.sweepChallenges(), 1)
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }))
})

// Regression: two instances whose batches shared one account's challenges each told it.
t.test('two instances sweeping one backlog at once tell each account once', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const shared = await createTestDatabase()
  t.teardown(shared.drop)
  const [first, second] = [await buildTestApp(t, { database: shared }), await buildTestApp(t, { database: shared })]
  await Promise.all([first.app.retention.sweepChallenges(), second.app.retention.sweepChallenges()])
  const prisma = first.prisma
  await prisma.$executeRawUnsafe('INSERT INTO "User" (id, email, "passwordHash", "updatedAt") SELECT gen_random_uuid(), \'shared-\' || n || \'@example.com\', \'x\', now() FROM generate_series(1, 1000) n')
  // Each account's challenge expired a second apart; the first account has one more, in the
  // middle: two sweeps at once take the first 500 and the next, one of its challenges each.
  await prisma.$executeRawUnsafe('INSERT INTO "MfaChallenge" (id, "userId", "tokenHash", "throttleKey", "expiresAt", "createdAt") SELECT gen_random_uuid(), id, \'h-\' || id, \'k\', now() - interval \'2 hours\' + (substring(email from \'[0-9]+\')::int * interval \'1 second\'), now() - interval \'3 hours\' FROM "User" WHERE email LIKE \'shared-%\'')
  const target = await prisma.user.findUniqueOrThrow({ where: { email: 'shared-1@example.com' } })
  await prisma.mfaChallenge.create({ data: { id: crypto.randomUUID(), userId: target.id, tokenHash: 'h-last', throttleKey: 'k', expiresAt: new Date(Date.now() - 7_200_000 + 750_500), createdAt: new Date(Date.now() - 3_600_000) } })
  const [a, b] = await Promise.all([first.app.retention.sweepChallenges(), second.app.retention.sweepChallenges()])
  t.equal(a + b, 1001, `every challenge swept once (${a} + ${b})`)
  t.equal(await prisma.auditEvent.count({ where: { subjectId: target.id, action: 'login.second_step_unfinished' } }), 1, 'the account with two is told once')
  t.equal(await prisma.auditEvent.count({ where: { action: 'login.second_step_unfinished' } }), 1000)
})

t.test('an instance sweeps when it starts, with no request and no call', async t => {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  const first = await buildTestApp(t, { database, env: { SMTP_URL: mail.url } })
  const account = await registerProvenAccount(first.app, first.prisma)
  const headers = bearer((await loginWithBody(first.app, account)).accessToken)
  await enrolTotp(first.app, headers, first.clock, account.password)
  t.equal((await startLogin(first.app, account)).statusCode, 200)
  await first.prisma.mfaChallenge.updateMany({ where: { userId: account.user.id }, data: { expiresAt: new Date(Date.now() - 1000) } })
  await buildTestApp(t, { database, env: { SMTP_URL: mail.url } })
  t.ok(await mail.nextMail(account.email, { subject: SUBJECT }))
})
