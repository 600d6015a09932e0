// The liveness rule reads the same in Prisma, in SQL and in TypeScript: one session per way of being or not being live.
import t from 'tap'
import { createPool, createPrisma } from '../../../src/db/prisma.js'
import { liveSessionSql, liveSessionWhere, sessionStateAt } from '../../../src/services/sessions/liveness.js'
import { createTestDatabase } from '../../helpers/database.js'

const database = await createTestDatabase()
const pool = createPool(database)
const prisma = createPrisma(pool)
t.teardown(async () => {
  await prisma.$disconnect()
  await pool.end()
  await database.drop()
})

const at = new Date('2030-01-01T12:00:00.000Z')
const later = new Date(at.getTime() + 60_000)
const earlier = new Date(at.getTime() - 60_000)

const active = await prisma.user.create({ data: { email: 'active@example.com', passwordHash: 'x' } })
const inactive = await prisma.user.create({ data: { email: 'inactive@example.com', passwordHash: 'x', isActive: false } })

// What each session is at `at`, by construction.
const cases = {
  live: { userId: active.id, idleExpiresAt: later, absoluteExpiresAt: later, revokedAt: null },
  revoked: { userId: active.id, idleExpiresAt: later, absoluteExpiresAt: later, revokedAt: earlier },
  idleExpired: { userId: active.id, idleExpiresAt: earlier, absoluteExpiresAt: later, revokedAt: null },
  absolutelyExpired: { userId: active.id, idleExpiresAt: later, absoluteExpiresAt: earlier, revokedAt: null },
  expiresThisMoment: { userId: active.id, idleExpiresAt: at, absoluteExpiresAt: later, revokedAt: null },
  userDeactivated: { userId: inactive.id, idleExpiresAt: later, absoluteExpiresAt: later, revokedAt: null }
}
const ids = new Map<string, string>()
for (const [name, data] of Object.entries(cases)) {
  const { id } = await prisma.session.create({ data: { ...data, secretSalt: new Uint8Array(32) } })
  ids.set(id, name)
}
const namesOf = (rows: Array<{ id: string }>) => rows.map(row => ids.get(row.id)).sort()

t.test('Prisma: only the live session matches', async t => {
  t.same(namesOf(await prisma.session.findMany({ where: liveSessionWhere(at), select: { id: true } })), ['live'])
})

t.test('SQL: only the live session matches', async t => {
  const rows = await prisma.$queryRawUnsafe<Array<{ id: string }>>(`SELECT s.id FROM "Session" s WHERE ${liveSessionSql('s', '$1::timestamp')}`, at.toISOString())
  t.same(namesOf(rows), ['live'])
})

t.test('TypeScript: only the live session is live; the others are revoked or expired', async t => {
  const rows = await prisma.session.findMany({ select: { id: true, revokedAt: true, idleExpiresAt: true, absoluteExpiresAt: true, user: { select: { isActive: true } } } })
  const states = Object.fromEntries(rows.map(row => [ids.get(row.id), sessionStateAt(row, row.user, at)]))
  t.same(states, {
    live: 'live',
    revoked: 'revoked',
    idleExpired: 'expired',
    absolutelyExpired: 'expired',
    expiresThisMoment: 'expired',
    userDeactivated: 'revoked'
  })
})
