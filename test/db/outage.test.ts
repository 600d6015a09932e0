// A database outage: quick 503 SERVICE_UNAVAILABLE (never 500, never a hung request), readiness follows, recovery without a restart.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js'
import { applyMigrations } from '../../src/db/schema-engine.js'
import { pino } from 'pino'
import { buildTestApp } from '../helpers/app.js'
import { logCapture } from '../helpers/mail.js'
import { until } from '../helpers/until.js'
import { freePort, startTcpProxy } from '../helpers/net.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

// A database of the test's own that it can stop and start again: same port, same data.
const dataDir = await mkdtemp(join(tmpdir(), 'auth-outage-'))
const port = await freePort()
let server: EmbeddedPostgres | undefined = await startEmbeddedPostgres(dataDir, port)
t.teardown(async () => {
  await server?.stop()
  await rm(dataDir, { recursive: true, force: true })
})
await applyMigrations(server.url, { connectTimeoutSeconds: 30 })
const proxy = await startTcpProxy(port)
t.teardown(proxy.close)

// Through the proxy, so that a test can also make the server hang.
const database = { url: `postgresql://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable`, poolSize: 1, drop: async () => {} }
const log = logCapture()
const { app } = await buildTestApp(t, {
  database,
  env: { DATABASE_CONNECT_TIMEOUT_SECONDS: '1', DATABASE_QUERY_TIMEOUT_SECONDS: '2', SETTINGS_REFRESH_SECONDS: '1' },
  logger: pino({ level: 'warn' }, log.stream)
})
const account = await registerAccount(app)
const { accessToken, refreshToken } = await loginWithBody(app, account)

async function timed (request: InjectOptions) {
  const started = Date.now()
  const response = await app.inject(request)
  return { response, ms: Date.now() - started }
}

const requests: Record<'ready' | 'login' | 'me' | 'refresh', InjectOptions> = {
  ready: { method: 'GET', url: '/ready' },
  login: { method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } },
  me: { method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } },
  refresh: { method: 'POST', url: '/auth/refresh', payload: { refreshToken } }
}

async function waitUntilReady (): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < 15_000) {
    if ((await app.inject(requests.ready)).statusCode === 200) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('not ready again within 15 s')
}

t.test('the database stops: every route that needs it answers 503 at once, liveness stays up', async t => {
  await server?.stop()
  server = undefined
  for (const [name, request] of Object.entries(requests)) {
    const { response, ms } = await timed(request)
    t.equal(response.statusCode, 503, name)
    t.same(response.json(), {
      statusCode: 503,
      code: 'SERVICE_UNAVAILABLE',
      error: 'Service Unavailable',
      message: 'The service is temporarily unavailable; retry later'
    }, `${name}: the catalogue's shape, no internals`)
    t.equal(response.headers['retry-after'], '5', `${name}: Retry-After`)
    t.ok(ms < 1500, `${name} answered in ${ms} ms`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the process itself is alive')

  // Regression: the settings' periodic reload logged the outage at error, with a stack, which alerts fire on.
  await until('the settings reload to meet the outage', async () => log.lines.some(line => String(line.msg).startsWith('reloading runtime settings')), 5000)
  t.same(log.lines.filter(line => Number(line.level) >= 50).map(line => line.msg), [], 'nothing at error')
  t.ok(log.lines.some(line => line.level === 40 && line.msg === 'reloading runtime settings: database unavailable' && line.err === undefined), 'a warning, without a stack')
})

t.test('the database comes back on the same address: the service recovers without a restart', async t => {
  server = await startEmbeddedPostgres(dataDir, port)
  const ms = await waitUntilReady()
  t.ok(ms < 5000, `ready again after ${ms} ms`)
  const login = await app.inject(requests.login)
  t.equal(login.statusCode, 200, 'the data survived: the same account logs in')
  t.equal((await app.inject(requests.me)).statusCode, 200)
})

t.test('a database that hangs: answers 503 within the query timeout, then recovers', async t => {
  proxy.freeze()
  const { response, ms } = await timed(requests.me)
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'SERVICE_UNAVAILABLE')
  t.ok(ms >= 1000 && ms < 4000, `answered after ${ms} ms (query timeout 2 s)`)
  const ready = await timed(requests.ready)
  t.equal(ready.response.statusCode, 503, 'not ready while it hangs')
  t.ok(ready.ms < 4000, `readiness answered in ${ready.ms} ms`)
  proxy.thaw()
  await waitUntilReady()
  t.equal((await app.inject(requests.me)).statusCode, 200)
})
