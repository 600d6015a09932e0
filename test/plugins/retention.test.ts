// AUDIT_RETENTION_DAYS and SESSION_RETENTION_DAYS: what is past them (audit entries; ended sessions and mailed links; expired failure counts) is deleted at start and every hour, in batches, by every instance at once without conflict.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { PrismaClient } from '../../src/db/prisma.js'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'
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
  t.same(await app.retention.pass(), { auditEntries: 0, sessions: 0, links: 0, failureCounts: 0 }, 'a second pass finds nothing')
})
