// Request ids: an incoming X-Request-Id is kept, logged with every line and echoed; otherwise a UUID.
import { pino } from 'pino'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { logCapture } from '../helpers/mail.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const capture = logCapture()
const { app } = await buildTestApp(t, { logger: pino({ level: 'info' }, capture.stream) })

t.test('an incoming id is echoed and on every log line of the request', async t => {
  const id = 'edge-7f3a9c1e2b4d'
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-request-id': id }, payload: { email: 'nobody@example.com', password: 'not the password' } })
  t.equal(response.statusCode, 401)
  t.equal(response.headers['x-request-id'], id)
  const lines = capture.lines.filter(line => line.reqId === id)
  t.ok(lines.some(line => line.msg === 'request completed'), 'the request is logged with it')
})

t.test('at info, one line per request: its completion, with what the arrival line had', async t => {
  const id = 'edge-one-line-3c9e'
  await app.inject({ method: 'GET', url: '/users/me?page=1', headers: { 'x-request-id': id }, remoteAddress: '203.0.113.9' })
  const lines = capture.lines.filter(line => line.reqId === id)
  t.same(lines.map(line => line.msg), ['request completed'])
  t.match(lines[0], { level: 30, req: { method: 'GET', url: '/users/me?page=1', remoteAddress: '203.0.113.9' }, res: { statusCode: 401 }, responseTime: Number })
  await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'edge-probe-5b2d' } })
  t.notOk(capture.lines.some(line => line.reqId === 'edge-probe-5b2d'), 'and none for a probe')
})

t.test('at debug, the arrival too', async t => {
  const debugCapture = logCapture()
  const { app: debugApp } = await buildTestApp(t, { logger: pino({ level: 'debug' }, debugCapture.stream) })
  const id = 'edge-debug-8a1f'
  await debugApp.inject({ method: 'GET', url: '/auth/session', headers: { 'x-request-id': id } })
  t.same(debugCapture.lines.filter(line => line.reqId === id).map(line => [line.level, line.msg]), [[20, 'incoming request'], [30, 'request completed']])
})

t.test('without one, each request gets a fresh UUID', async t => {
  const first = await app.inject({ method: 'GET', url: '/health' })
  const second = await app.inject({ method: 'GET', url: '/nope' })
  t.match(first.headers['x-request-id'], UUID)
  t.match(second.headers['x-request-id'], UUID, 'a 404 carries it too')
  t.not(first.headers['x-request-id'], second.headers['x-request-id'])
})

t.test('an unusable id is replaced, not logged', async t => {
  for (const id of ['x'.repeat(129), 'has spaces', 'naïve', '']) {
    const response = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': id } })
    t.match(response.headers['x-request-id'], UUID, JSON.stringify(id.slice(0, 20)))
    t.notOk(capture.lines.some(line => line.reqId === id))
  }
})
