// GET /metrics: Prometheus text behind a bearer token or on a port of its own, never public by default; what it counts.
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { errorHandler } from '../../src/plugins/error-handler.js'
import { loadShedding } from '../../src/plugins/load-shedding.js'
import { ACTIVE_SESSIONS_MAX_AGE_SECONDS, createMetrics, METRICS_MAX_CONNECTIONS, metrics as metricsPlugin, type MetricsSettings } from '../../src/plugins/metrics.js'
import { buildTestApp } from '../helpers/app.js'
import { logCapture } from '../helpers/mail.js'
import { drip, freePort, openConnection } from '../helpers/net.js'
import { until } from '../helpers/until.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

const TOKEN = 'scrape-8d2b9f4e1c7a6035'

/** The value of one sample, `name{labels}` with the labels in the order written, or undefined. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`)
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match?.[1] !== name) continue
    const present = (match[2] ?? '').split(',')
    if (wanted.every(label => present.includes(label))) return Number(match[3])
  }
  return undefined
}

/** The metrics plugin alone, behind METRICS_TOKEN, counting the live sessions with `countActiveSessions` by the clock `now`. */
async function metricsAlone (t: Test, settings: Pick<MetricsSettings, 'countActiveSessions' | 'now'>, logger?: FastifyBaseLogger) {
  const app = Fastify(logger === undefined ? {} : { loggerInstance: logger })
  t.teardown(() => app.close())
  await app.register(errorHandler)
  await app.register(loadShedding, { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 })
  await app.register(metricsPlugin, { metrics: createMetrics(), ...settings, token: TOKEN, port: undefined, host: '127.0.0.1', edge: {}, logLevel: 'info' })
  return async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
    t.equal(response.statusCode, 200)
    return sample(response.body, 'auth_active_sessions')
  }
}

/** A clock that moves only when told to. */
function stoppedClock () {
  let time = Date.parse('2026-01-01T00:00:00Z')
  return { now: () => new Date(time), advanceMs: (ms: number) => { time += ms } }
}

t.test('not configured: there is no /metrics', async t => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
})

t.test('not configured: requests are not timed either', async t => {
  for (const token of [undefined, TOKEN]) {
    const app = Fastify()
    t.teardown(() => app.close())
    const metrics = createMetrics()
    await app.register(errorHandler)
    await app.register(loadShedding, { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 })
    await app.register(metricsPlugin, { metrics, countActiveSessions: async () => 0, token, port: undefined, host: '127.0.0.1', edge: {}, logLevel: 'info' })
    app.get('/hello', async () => ({ hello: 'world' }))
    t.equal((await app.inject({ method: 'GET', url: '/hello' })).statusCode, 200)
    const timed = sample(await metrics.registry.metrics(), 'http_request_duration_seconds_count', { route: '/hello' })
    t.equal(timed, token === undefined ? undefined : 1, token === undefined ? 'no histogram without a scraper' : 'timed once there is one')
  }
})

t.test('METRICS_TOKEN: only a bearer of the token may read them', async t => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  const none = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'AUTH_REQUIRED')
  const wrong = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}x` } })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().code, 'AUTH_TOKEN_INVALID')
  const right = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  const spaced = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `bearer  ${TOKEN}` } })
  t.equal(spaced.statusCode, 200, 'the scheme in any case, then one or more spaces, as RFC 6750 writes it (regression: two spaces refused)')
  t.equal(right.statusCode, 200)
  t.match(right.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.ok(sample(right.body, 'process_cpu_user_seconds_total') !== undefined, 'process metrics')
  t.equal(sample(right.body, 'auth_logins_total', { result: 'success' }), 0, 'series exist before any event')
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.notOk(doc.paths['/metrics'], 'not in the public API document')
})

t.test('METRICS_TOKEN on the API port: wrong tokens count against the rate limit', async t => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN, RATE_LIMIT_DEFAULT: '3/60' } })
  const scrape = async (token: string) => await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  for (let i = 0; i < 3; i++) t.equal((await scrape(`guess-${i}`)).json().code, 'AUTH_TOKEN_INVALID', `guess ${i}`)
  const limited = await scrape('guess-3')
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.equal((await scrape(TOKEN)).statusCode, 429, 'the right token too, once the guesses used the limit up')
})

t.test('what is counted: requests by route template and status, logins, refreshes, reuse, live sessions', async t => {
  const { app } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN, REFRESH_REUSE_GRACE_SECONDS: '0' } })
  const scrape = async () => (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).body
  const account = await registerAccount(app)
  const first = await loginWithBody(app, account)
  const second = await loginWithBody(app, account)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password' } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'not the password' } })
  // One scrape only: a second within ACTIVE_SESSIONS_MAX_AGE_SECONDS would answer with the first's count.

  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  t.equal(refreshed.statusCode, 200)
  const reused = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  t.equal(reused.json().code, 'AUTH_REFRESH_REUSED')
  // No token at all (a browser whose cookie is gone, after an upgrade that renamed it): a refusal too.
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: {} })).json().code, 'AUTH_REQUIRED')
  // From the session still live: a user, so 403 (the revoked one would get 401 from the admin API).
  await app.inject({ method: 'GET', url: `/admin/users/${account.user.id}`, headers: { authorization: `Bearer ${second.accessToken}` } })
  await app.inject({ method: 'GET', url: '/no/such/page' })

  const text = await scrape()
  t.equal(sample(text, 'auth_logins_total', { result: 'success' }), 2)
  t.equal(sample(text, 'auth_logins_total', { result: 'invalid_credentials' }), 2, 'unknown account and wrong password alike')
  t.equal(sample(text, 'auth_refreshes_total', { result: 'success' }), 1)
  t.equal(sample(text, 'auth_refreshes_total', { result: 'failure' }), 2, 'a reused token and a missing one')
  t.equal(sample(text, 'auth_refresh_reuse_detected_total'), 1)
  t.equal(sample(text, 'auth_active_sessions'), 1, 'two sessions, the reused one revoked')
  const count = (labels: Record<string, string>) => sample(text, 'http_request_duration_seconds_count', labels)
  t.equal(count({ method: 'POST', route: '/auth/login', status_code: '200' }), 2)
  t.equal(count({ method: 'POST', route: '/auth/login', status_code: '401' }), 2)
  t.equal(count({ method: 'GET', route: '/admin/users/:id', status_code: '403' }), 1, 'the template, never the id')
  t.equal(count({ method: 'GET', route: 'unmatched', status_code: '404' }), 1, 'unknown URLs share one series')
  t.notMatch(text, account.user.id, 'no user id in any label')
})

t.test('METRICS_PORT: served on a port of its own, not on the API port, until the app closes', async t => {
  const port = await freePort()
  const { app } = await buildTestApp(t, { env: { METRICS_PORT: String(port) } })
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404, 'not on the API port')
  const response = await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(response.status, 200)
  t.match(await response.text(), /auth_active_sessions 0/)
  t.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 404, 'nothing else there')
  await app.close()
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'closed with the app')
})

t.test('METRICS_PORT with METRICS_TOKEN: the token is required there too', async t => {
  const port = await freePort()
  await buildTestApp(t, { env: { METRICS_PORT: String(port), METRICS_TOKEN: TOKEN } })
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 401)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200)
})

t.test('METRICS_PORT holds slow clients to the API port\'s bounds and answers in the catalogue\'s shape (regression: Node\'s minute)', async t => {
  const port = await freePort()
  await buildTestApp(t, { env: { METRICS_PORT: String(port), HEADERS_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '2' } })
  const dripping = await openConnection(port)
  dripping.socket.write('GET /metrics HTTP/1.1\r\nHost: metrics.internal\r\n')
  // Node's own bounds are 60 s, checked every 30 s: 10 s is far past the 1 s bound yet far short of those.
  const openFor = await drip(dripping, 'X-Slow: yes\r\n', 10_000)
  t.ok(openFor !== undefined && openFor >= 1000, `cut off after the headers timeout (after ${openFor} ms)`)
  t.match(dripping.received(), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"code":"REQUEST_TIMEOUT"/)
  const malformed = await openConnection(port)
  malformed.socket.write('GET /metrics HTTP/1.1\r\nHost metrics.internal\r\n\r\n')
  await malformed.closed
  t.match(malformed.received(), /^HTTP\/1\.1 400 Bad Request\r\n[^]*"code":"MALFORMED_REQUEST"/)
})

t.test('METRICS_PORT holds at most 64 connections: past them a new one is closed unanswered, and a scrape still gets through once one ends', async t => {
  const port = await freePort()
  await buildTestApp(t, { env: { METRICS_PORT: String(port) } })
  const held = await Promise.all(Array.from({ length: METRICS_MAX_CONNECTIONS }, async () => await openConnection(port)))
  t.teardown(() => { for (const connection of held) connection.socket.destroy() })
  const refused = await openConnection(port)
  refused.socket.write('GET /metrics HTTP/1.1\r\nHost: metrics.internal\r\n\r\n')
  await refused.closed
  t.equal(refused.received(), '', 'closed with no answer')
  held.pop()?.socket.destroy()
  let status = 0
  await until('a place to be free', async () => {
    status = await fetch(`http://127.0.0.1:${port}/metrics`).then(response => response.status, () => 0)
    return status !== 0
  }, 10_000)
  t.equal(status, 200)
})

t.test('the active sessions gauge survives a failing count, and a failed count is not tried again at once', async t => {
  const capture = logCapture()
  const clock = stoppedClock()
  let failing = true
  let calls = 0
  const scrape = await metricsAlone(t, {
    now: clock.now,
    countActiveSessions: async () => {
      calls++
      if (failing) throw new Error('Connection terminated unexpectedly')
      return 3
    }
  }, pino({ level: 'warn' }, capture.stream))
  // Regression: before any count, the gauge's default 0 read as every session ended.
  t.ok(Number.isNaN(await scrape()), 'the scrape still answers; no value known yet: NaN, not 0')
  t.ok(capture.lines.some(line => line.msg === 'metrics: could not count the active sessions'), 'and says why it could not count')
  failing = false
  clock.advanceMs(ACTIVE_SESSIONS_MAX_AGE_SECONDS * 1000 - 1)
  t.ok(Number.isNaN(await scrape()), 'a database that just failed is not asked again at every scrape')
  t.equal(calls, 1)
  clock.advanceMs(1)
  t.equal(await scrape(), 3, 'it is asked again once the count is as old as a count may be')
  failing = true
  clock.advanceMs(ACTIVE_SESSIONS_MAX_AGE_SECONDS * 1000)
  t.equal(await scrape(), 3, 'then the last known value')
  t.equal(calls, 3)
})

// Regression: every scrape counted every live session in the database (130–150 ms at 500 000),
// and METRICS_PORT has no rate limit: 32 clients scraping at once slowed /ready to 1.65 s.
t.test('scrapes share the count under way, and reuse a count for ACTIVE_SESSIONS_MAX_AGE_SECONDS', async t => {
  const clock = stoppedClock()
  let calls = 0
  let sessions = 7
  // While held, counts wait for `release`: the scrapes arriving meanwhile find one under way.
  let held: Array<() => void> | null = []
  const release = () => { const waiting = held ?? []; held = null; for (const resume of waiting) resume() }
  const scrape = await metricsAlone(t, {
    now: clock.now,
    countActiveSessions: async () => {
      calls++
      if (held !== null) await new Promise<void>(resolve => held?.push(resolve))
      return sessions
    }
  })
  const first = Array.from({ length: 5 }, scrape)
  await until('a count to start', () => calls > 0)
  // Time for the other four to reach the count (each started one of its own before the fix).
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(calls, 1, 'five scrapes at once: one count')
  release()
  t.same(await Promise.all(first), [7, 7, 7, 7, 7], 'whose value each answers')
  sessions = 8
  clock.advanceMs(ACTIVE_SESSIONS_MAX_AGE_SECONDS * 1000 - 1)
  t.equal(await scrape(), 7, 'a scrape within the reuse window answers with that count')
  t.equal(calls, 1, 'without counting again')
  clock.advanceMs(1)
  t.equal(await scrape(), 8, 'a scrape after it counts again')
  sessions = 9
  clock.advanceMs(-60_000)
  t.equal(await scrape(), 9, 'so does one after the clock was set back, rather than keep the count longer')
  t.equal(calls, 3)
})

t.test('through the app: scrapes at once, and right after, run one count of the database', async t => {
  const { app, prisma } = await buildTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  await loginWithBody(app, await registerAccount(app))
  const original = prisma.session.count.bind(prisma.session)
  let counts = 0
  prisma.session.count = (async (...args: Parameters<typeof original>) => { counts++; return await original(...args) }) as typeof prisma.session.count
  t.teardown(() => { prisma.session.count = original })
  const scrape = async () => sample((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).body, 'auth_active_sessions')
  t.same(await Promise.all(Array.from({ length: 10 }, scrape)), Array(10).fill(1), 'ten scrapes at once')
  t.equal(await scrape(), 1, 'and one after')
  t.equal(counts, 1, 'one count')
})
