// AUDIT_RETENTION_DAYS: entries past it are deleted at start and every hour, in batches, by every instance at once without conflict; 0 keeps them all.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { PrismaClient } from '../../src/db/prisma.js'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
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
  await writeEntries(prisma, clock.now(), 31, 1200, 'old')
  await writeEntries(prisma, clock.now(), 29, 3, 'recent')
  t.equal(await app.auditRetention.pass(), 1200, 'reports how many it deleted')
  t.equal(await countTagged(prisma, 'old'), 0, 'none older is left')
  t.equal(await countTagged(prisma, 'recent'), 3, 'the newer are kept')
  clock.advance(2 * 86_400)
  t.equal(await app.auditRetention.pass(), 3, 'and go once they are old enough')
})

t.test('AUDIT_RETENTION_DAYS=0 keeps every entry', async t => {
  const { app, prisma, clock } = await buildTestApp(t, { env: { AUDIT_RETENTION_DAYS: '0' } })
  await writeEntries(prisma, clock.now(), 10_000, 2, 'ancient')
  t.equal(await app.auditRetention.pass(), 0)
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
  const [a, b] = await Promise.all([second.app.auditRetention.pass(), third.app.auditRetention.pass()])
  t.equal(a + b, 3000, `every entry deleted once (${a} + ${b})`)
  t.equal(await countTagged(first.prisma, 'backlog'), 0)
})
