// A write that waits past DATABASE_QUERY_TIMEOUT_SECONDS (a lock held, storage stalled) is cancelled by the server: the 503 wrote nothing, and sending it again is safe.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

const { app, prisma, pool, database } = await buildTestApp(t, { env: { DATABASE_QUERY_TIMEOUT_SECONDS: '1' } })
const onServer = database.poolSize > 1

/** Runs `work` while another connection holds the rows `lock` locks, then lets them go and waits a moment for what the server would still commit. */
async function whileLocked<T> (lock: string, values: unknown[], work: () => Promise<T>): Promise<T> {
  const result = await withClient(database.url, async holder => {
    await holder.query('BEGIN')
    await holder.query(lock, values)
    try {
      return await work()
    } finally {
      await holder.query('ROLLBACK')
    }
  })
  await sleep(300)
  return result
}

// Regression: pg's client-side timeout alone answered 503 and left the statement to run on;
// it committed once the lock was released, and the refresh retried as README says was taken
// for a stolen token (the session ended, a false reuse in the audit trail).
t.test('a refresh stalled on its session\'s row: 503, no rotation afterwards, and the retry succeeds', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const sessionId = refreshToken.split('.')[0]
  const stalled = await whileLocked('SELECT 1 FROM "Session" WHERE id = $1::uuid FOR UPDATE', [sessionId],
    () => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } }))
  t.equal(stalled.statusCode, 503)
  t.equal(stalled.json().code, 'SERVICE_UNAVAILABLE')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sessionId } })).generation, 0, 'not rotated after the answer')
  const retried = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(retried.statusCode, 200, 'the retry rotates')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'refresh.reuse_detected' } }), 0, 'no reuse recorded')
})

t.test('a login stalled on its user\'s row: 503, and no session opened afterwards', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const stalled = await whileLocked('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id],
    () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } }))
  t.equal(stalled.statusCode, 503)
  t.equal(await prisma.session.count({ where: { userId: account.user.id } }), 0, 'no session nobody holds tokens for')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'login.succeeded' } }), 0)
})

// Regression: a transaction whose client fell silent after taking a lock (a partition, a frozen
// host) kept it until the server's TCP keep-alive gave up, hours later; every instance waited.
t.test('a transaction whose client falls silent holding a user\'s row is ended by the server: the user logs in again', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const account = await registerAccount(app)
  const silent = await pool.connect()
  // The server's notice, then the end of the connection: both are 'error' events.
  const ended = new Promise<Error>(resolve => silent.on('error', resolve))
  await silent.query('BEGIN')
  await silent.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id])
  await sleep(1500)
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  t.equal(login.statusCode, 200, 'the row is free again')
  t.match(await ended, /idle-in-transaction timeout/, 'the server ended the silent session')
  silent.release(true)
})
