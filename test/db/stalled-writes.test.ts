// A write that waits past DATABASE_QUERY_TIMEOUT_SECONDS (a lock held, storage stalled) is cancelled by the server: the 503 wrote nothing, and sending it again is safe.
import t from 'tap'
import pg from 'pg'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

const { app, prisma, database } = await buildTestApp(t, { env: { DATABASE_QUERY_TIMEOUT_SECONDS: '1' } })
const onServer = database.poolSize > 1

/** Holds the rows `lock` locks, on a connection of its own, until `release`. */
async function holdLock (lock: string, values: unknown[]) {
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  await client.query('BEGIN')
  await client.query(lock, values)
  return { release: async () => { await client.query('ROLLBACK'); await client.end() } }
}

const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

// Regression: pg's client-side timeout alone answered 503 and left the statement to run on;
// it committed once the lock was released, and the refresh retried as README says was taken
// for a stolen token (the session ended, a false reuse in the audit trail).
t.test('a refresh stalled on its session\'s row: 503, no rotation afterwards, and the retry succeeds', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const sessionId = refreshToken.split('.')[0]
  const holder = await holdLock('SELECT 1 FROM "Session" WHERE id = $1::uuid FOR UPDATE', [sessionId])
  const stalled = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(stalled.statusCode, 503)
  t.equal(stalled.json().code, 'SERVICE_UNAVAILABLE')
  await holder.release()
  await pause(300)
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).generation, 0, 'not rotated after the answer')
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(retried.statusCode, 200, 'the retry rotates')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'refresh.reuse_detected' } }), 0, 'no reuse recorded')
})

t.test('a login stalled on its user\'s row: 503, and no session opened afterwards', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const holder = await holdLock('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id])
  const stalled = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(stalled.statusCode, 503)
  await holder.release()
  await pause(300)
  t.equal(await prisma.session.count({ where: { userId: account.user.id } }), 0, 'no session nobody holds tokens for')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'login.succeeded' } }), 0)
})
