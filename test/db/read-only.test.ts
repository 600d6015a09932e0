// A database that refuses writes (a failover left the pool on a standby, or the primary came back
// read-only): readiness says so, writes answer 503 with Retry-After (never 500), nothing is
// half-written, and the service recovers by itself once the database takes writes again.
import { pino } from 'pino'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { logCapture } from '../helpers/mail.js'
import { until } from '../helpers/until.js'
import { newAccount, registerAccount } from '../helpers/users.js'

const embedded = process.env.TEST_DATABASE_URL === undefined || process.env.TEST_DATABASE_URL === ''
const log = logCapture()
// LOG_LEVEL warn: the probes' own level follows it (silent in the tests' default).
const { app, prisma, database } = await buildTestApp(t, { env: { LOG_LEVEL: 'warn' }, logger: pino({ level: 'warn' }, log.stream) })
const account = await registerAccount(app)

const outage = {
  statusCode: 503,
  code: 'SERVICE_UNAVAILABLE',
  error: 'Service Unavailable',
  message: 'The service is temporarily unavailable; retry later'
}

const ready = async () => (await app.inject({ method: 'GET', url: '/ready' })).statusCode

/**
 * Turns the test's own database read-only (or back) for every new session, and ends the
 * sessions already open, so that the pool reconnects under the new default, as after a failover.
 */
async function setReadOnly (on: boolean): Promise<void> {
  const server = process.env.TEST_DATABASE_URL as string
  const name = new URL(database.url).pathname.slice(1)
  await withClient(server, async client => {
    await client.query(on ? `ALTER DATABASE ${name} SET default_transaction_read_only = on` : `ALTER DATABASE ${name} RESET default_transaction_read_only`)
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
  })
  // The first requests may meet the ended sessions (a 503 of their own, the database
  // unreachable); then the pool has reconnected, and readiness says why it is not ready.
  await until(on ? 'readiness to meet a read-only session' : 'ready again', async () => {
    const seen = log.lines.length
    const status = await ready()
    return on ? status === 503 && log.lines.slice(seen).some(line => line.msg === 'readiness check failed: database read-only') : status === 200
  }, 10_000).catch(() => {})
}

const rows = async () => ({
  users: await prisma.user.count(),
  sessions: await prisma.session.count(),
  loginFailures: await prisma.loginFailure.count()
})

t.test('readiness on a database that takes writes', async t => {
  t.equal(await ready(), 200, embedded ? 'the embedded database' : 'a PostgreSQL server')
})

t.test('a read-only database: not ready; ready again once it takes writes', { skip: embedded ? 'a read-only database needs a PostgreSQL server' : false }, async t => {
  t.teardown(() => setReadOnly(false))
  await setReadOnly(true)
  const response = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(response.statusCode, 503, 'out of the load balancer')
  t.same(response.json(), outage, 'the catalogue\'s answer')
  t.ok(response.headers['retry-after'], 'Retry-After')
  t.ok(log.lines.some(line => line.level === 50 && line.msg === 'readiness check failed: database read-only'), 'an error says why: it takes an operator')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the process itself is alive')

  await setReadOnly(false)
  t.equal(await ready(), 200, 'ready again, without a restart')
})

t.test('a read-only database: login and registration answer 503 with Retry-After, write nothing, and work again once it takes writes', { skip: embedded ? 'a read-only database needs a PostgreSQL server' : false }, async t => {
  t.teardown(() => setReadOnly(false))
  const before = await rows()
  const fresh = newAccount()
  log.lines.length = 0
  await setReadOnly(true)

  const requests = {
    login: { method: 'POST' as const, url: '/auth/login', payload: { email: account.email, password: account.password } },
    'login with a wrong password': { method: 'POST' as const, url: '/auth/login', payload: { email: account.email, password: 'not the password at all' } },
    registration: { method: 'POST' as const, url: '/auth/register', payload: fresh }
  }
  for (const [name, request] of Object.entries(requests)) {
    const response = await app.inject(request)
    t.equal(response.statusCode, 503, name)
    t.same(response.json(), outage, `${name}: the outage answer, no internals`)
    t.equal(response.headers['retry-after'], '5', `${name}: Retry-After`)
  }
  t.same(await rows(), before, 'nothing written: no user, no session, no failure counted')
  // (Besides the readiness checks' own, made while the pool reconnected.)
  const errors = log.lines.filter(line => Number(line.level) >= 50 && line.msg !== 'readiness check failed: database read-only')
  t.equal(errors.length, Object.keys(requests).length, 'one error a request: it takes an operator')
  t.match(errors, errors.map(() => ({ msg: 'database unavailable', reason: /read-only/ })), 'the database unavailable, read-only')
  t.notOk(errors.some(line => 'err' in line), 'no stack: it is not a bug')

  await setReadOnly(false)
  t.equal((await app.inject(requests.login)).statusCode, 200, 'login works again')
  t.equal((await app.inject(requests.registration)).statusCode, 201, 'the same registration succeeds: nothing of it was left')
  t.equal(await prisma.user.count(), before.users + 1)
})
