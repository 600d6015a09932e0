// Load shedding: a saturated event loop gets 503 SERVICE_UNAVAILABLE with Retry-After (liveness still answers), and so do requests arriving during shutdown.
import { once } from 'node:events'
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { MAX_PARAM_LENGTH } from '../../src/plugins/error-handler.js'
import { buildTestApp } from '../helpers/app.js'
import { registerAccount } from '../helpers/users.js'

/** Keeps the event loop busy for `ms`, letting it turn (and the samplers run) every 250 ms. */
async function saturate (ms: number): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const slice = Date.now() + 250
    while (Date.now() < slice) { /* saturating the loop is the point */ }
    await new Promise(resolve => setImmediate(resolve))
  }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** The status of GET /ready once it is 200, or the last one after `ms`. */
async function readyWithin (app: FastifyInstance, ms: number): Promise<number> {
  const deadline = Date.now() + ms
  let status = 0
  while (status !== 200 && Date.now() < deadline) {
    status = (await app.inject({ method: 'GET', url: '/ready' })).statusCode
    if (status !== 200) await sleep(200)
  }
  return status
}

t.test('a saturated event loop: 503 at once, liveness exempt, back to normal when it calms down', async t => {
  // Two instances, one per measure: mean delay, and utilization.
  const byDelay = await buildTestApp(t, { env: { LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS: '100' } })
  const byUtilization = await buildTestApp(t, { env: { LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: '0.9' } })
  // Starting them (PGlite, the WASM schema engine) kept this process busy: wait for calm.
  t.equal(await readyWithin(byDelay.app, 5000), 200, 'calm: served')
  t.equal(await readyWithin(byUtilization.app, 5000), 200, 'calm: served')

  // Longer than the samplers' period (1 s), so that both have measured it.
  await saturate(2500)
  for (const [name, { app }] of Object.entries({ byDelay, byUtilization })) {
    const response = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(response.statusCode, 503, `${name}: refused`)
    t.same(response.json(), { statusCode: 503, code: 'SERVICE_UNAVAILABLE', error: 'Service Unavailable', message: 'The service is temporarily unavailable; retry later' })
    t.equal(response.headers['retry-after'], '5')
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, `${name}: liveness still answers`)
  }

  t.equal(await readyWithin(byDelay.app, 5000), 200, 'served again once the loop is calm')
})

t.test('the first two seconds after start-up are never shed: their samples measure start-up', async t => {
  const { app } = await buildTestApp(t, { env: { LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS: '100' } })
  const ready = Date.now()
  await saturate(1200)
  t.ok(Date.now() - ready < 2000, 'still warming up')
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'served although the sample says overloaded')
  await saturate(Math.max(0, ready + 2000 - Date.now()) + 1200)
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 503, 'shed once warmed up')
})

t.test('draining: every answer closes its connection, what the router refuses included (regression: kept alive), and /ready is 503', async t => {
  const { app } = await buildTestApp(t)
  app.drain()
  for (const [url, status] of [['/health', 200], ['/nope', 404], [`/admin/users/${'a'.repeat(MAX_PARAM_LENGTH + 1)}`, 400], ['/ready', 503]] as const) {
    const response = await app.inject({ method: 'GET', url })
    t.equal(response.statusCode, status, url.slice(0, 20))
    t.equal(response.headers.connection, 'close', `${url.slice(0, 20)}: connection closed after the answer`)
  }
})

t.test('shutdown: the request in flight completes and its connection closes; one arriving meanwhile gets 503 in the catalogue shape', async t => {
  // Expensive hashing makes the login slow enough to close the app under it: hundreds of
  // milliseconds on a fast machine (six passes answered before the close began on one).
  const { app } = await buildTestApp(t, { env: { ARGON2_MEMORY_KIB: '65536', ARGON2_TIME_COST: '20' } })
  const account = await registerAccount(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const open = async () => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.on('data', chunk => { received += String(chunk) })
    await once(socket, 'connect')
    return { socket, received: () => received, closed: once(socket, 'close') }
  }

  const inFlight = await open()
  const body = JSON.stringify({ email: account.email, password: account.password })
  inFlight.socket.write(`POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  // A request whose headers are still arriving when shutdown begins: its connection is not idle, so it stays open.
  const late = await open()
  late.socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n')
  await sleep(100)
  const closed = app.close()
  await sleep(50)
  late.socket.write('\r\n')
  await Promise.all([closed, inFlight.closed, late.closed])

  t.match(inFlight.received(), /^HTTP\/1\.1 200 /, 'the login in flight completed')
  t.match(inFlight.received(), /"accessToken"/)
  t.match(inFlight.received(), /\r\nconnection: close\r\n/i, 'and its keep-alive connection is closed after the answer')
  t.match(late.received(), /^HTTP\/1\.1 503 /, 'the late request is refused')
  t.match(late.received(), /\r\nretry-after: 5\r\n/i)
  t.match(late.received(), /"code":"SERVICE_UNAVAILABLE"/, 'in the catalogue shape')
})
