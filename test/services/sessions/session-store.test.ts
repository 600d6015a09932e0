// The login's statement reads what it changes, not every session its user ever had, whichever plan
// PostgreSQL keeps for it; and it never deadlocks with the ending of all the user's sessions.
import { randomBytes, randomUUID } from 'node:crypto'
import type pg from 'pg'
import t from 'tap'
import { createPool, createPrisma } from '../../../src/db/prisma.js'
import { endSessionsOfUser, openSession, type NewSession } from '../../../src/services/sessions/session-store.js'
import { createTestDatabase } from '../../helpers/database.js'

const database = await createTestDatabase()
const pool = createPool(database)
const prisma = createPrisma(pool)
t.teardown(async () => {
  await prisma.$disconnect()
  await pool.end()
  await database.drop()
})

/** Rows of "Session" this connection has read so far (its transaction's statistics, not yet flushed). */
async function sessionsRead (client: pg.PoolClient): Promise<number> {
  const { rows: [row] } = await client.query<{ tuples: string }>(`
    SELECT seq_tup_read + idx_tup_fetch AS tuples FROM pg_stat_xact_user_tables WHERE relname = 'Session'`)
  return Number(row?.tuples ?? 0)
}

const day = 86_400_000
const at = new Date()

/** A password login of `userId` at `at`, keeping nine other live sessions. */
const loginOf = (userId: string): NewSession => ({
  id: randomUUID(),
  userId,
  salt: new Uint8Array(32),
  userAgent: null,
  ip: '192.0.2.1',
  at,
  idleExpiresAt: new Date(at.getTime() + 7 * day),
  absoluteExpiresAt: new Date(at.getTime() + 30 * day),
  amr: ['pwd'],
  freshTokenId: randomUUID(),
  proven: { password: true, totpEnrolmentId: null, recoveryCodeGeneration: null, passkeyId: null },
  keepOthers: 9,
  deleteEndedBefore: new Date(at.getTime() - 30 * day),
  passwordHash: null,
  signOutGeneration: null,
  throttleKeys: [],
  auditId: randomUUID(),
  deviceHash: randomBytes(32),
  deviceDescription: 'an app or a browser',
  notices: { enabled: true, afterFailures: 5 },
  noticeId: randomUUID()
})

// A user who logs in all day (a shared account, an app that logs in at every start): two
// thousand sessions evicted lately, kept for their retention, and a few live ones; and other
// users, so that the table's statistics look like a service's.
// Fixed ids and no autovacuum: the plans depend on where the rows sort and on what is vacuumed,
// and this way they are the same at every run (the old statement read all 2003 under these).
const heavy = '00000000-0000-4000-8000-000000000000'
await pool.query('ALTER TABLE "Session" SET (autovacuum_enabled = false)')
await pool.query('INSERT INTO "User" (id, email, "passwordHash", "updatedAt") VALUES ($1, \'heavy@example.com\', \'x\', now())', [heavy])
await pool.query(`INSERT INTO "User" (id, email, "passwordHash", "updatedAt")
  SELECT md5('user' || g)::uuid, 'user' || g || '@example.com', 'x', now() FROM generate_series(1, 300) g`)
// Each of another device: the login's question whether the user knows its device reads none of them.
const session = (revokedAt: string) => `INSERT INTO "Session" (id, "userId", "secretSalt", ip, "createdAt", "lastUsedAt", "idleExpiresAt", "absoluteExpiresAt", "authTime", "revokedAt", "deviceHash")
  SELECT gen_random_uuid(), u.id, '\\x00', '192.0.2.1', now(), now(), now() + interval '7 days', now() + interval '30 days', now(), ${revokedAt}, decode(md5(gen_random_uuid()::text), 'hex')`
await pool.query(`${session("now() - g * interval '1 minute'")} FROM "User" u, generate_series(1, 2000) g WHERE u.id = $1`, [heavy])
await pool.query(`${session('NULL')} FROM "User" u, generate_series(1, 3) g`)
await pool.query('ANALYZE "Session"')

for (const [name, setting] of [['the plan PostgreSQL prefers', 'on'], ['without bitmap scans', 'off']]) {
  t.test(`a login reads the user's live sessions and the ended ones it deletes, not the rest: ${name}`, async t => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      // A named statement gets PostgreSQL's generic plan after a few runs; this asks for it at once.
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan')
      await client.query(`SET LOCAL enable_bitmapscan = ${setting}`)
      const before = await sessionsRead(client)
      const user = await openSession(client, loginOf(heavy))
      t.equal(user?.id, heavy)
      const read = await sessionsRead(client) - before
      t.ok(read < 50, `sessions read: ${read} (the user has 2003)`)
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
  })
}

// A login ending the sessions beyond the cap and a sign-out everywhere each lock the user's
// sessions, in the order of their own plans: before both waited for the user's row first,
// a quarter of these rounds deadlocked (a 500 after a second).
t.test('a login ending sessions beyond the cap and the ending of all the user\'s sessions at once never deadlock', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const userId = randomUUID()
  await pool.query('INSERT INTO "User" (id, email, "passwordHash", "updatedAt") VALUES ($1, \'busy@example.com\', \'x\', now())', [userId])
  for (let round = 0; round < 100; round++) {
    // Forty live sessions used in random order, so the login's order is not the index's.
    await pool.query(`${session('NULL')} FROM "User" u, generate_series(1, 40) g WHERE u.id = $1`, [userId])
    await pool.query('UPDATE "Session" SET "lastUsedAt" = now() - random() * interval \'1 day\' WHERE "userId" = $1 AND "revokedAt" IS NULL', [userId])
    const results = await Promise.allSettled([openSession(pool, loginOf(userId)), prisma.$transaction(async tx => await endSessionsOfUser(tx, userId, 'logout_all', at))])
    const failures = results.flatMap(result => result.status === 'rejected' ? [result.reason] : [])
    if (failures.length > 0) return t.fail(`round ${round}`, { failures })
  }
  // Each round's sign-out ends something (the forty, or the nine its login kept); a login
  // evicts only when it came first, and whether the last login's session is live depends on
  // the order too, so only ended sessions are compared here.
  const { rows } = await pool.query<{ revokedReason: string | null, revokedAt: Date | null }>(
    'SELECT DISTINCT "revokedReason", "revokedAt" FROM "Session" WHERE "userId" = $1 AND "revokedAt" IS NOT NULL ORDER BY 1', [userId])
  t.ok(rows.some(row => row.revokedReason === 'logout_all'), 'the sign-outs ended sessions')
  t.same(rows.filter(row => row.revokedReason !== 'evicted' && row.revokedReason !== 'logout_all'), [], 'nothing else ended them')
  t.ok(rows.every(row => row.revokedAt?.getTime() === at.getTime()), 'every ended session ended at that moment, read back as it was written')
  // Each round's sign-out ended what earlier rounds left; only a login it did not see survives it.
  const { rows: [live] } = await pool.query<{ count: number }>('SELECT count(*)::int FROM "Session" WHERE "userId" = $1 AND "revokedAt" IS NULL', [userId])
  t.ok(live !== undefined && live.count <= 1, `live sessions: ${live?.count}`)
})
