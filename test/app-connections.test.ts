// The HTTP server's edge over real TCP: slow clients are cut off within their bounds, and what Node's parser refuses is answered in the catalogue's shape.
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import t from 'tap'
import { serverTimeoutsOf } from '../src/config-derived.js'
import { loadConfig } from '../src/config.js'
import { buildTestApp } from './helpers/app.js'
import { logCapture } from './helpers/mail.js'
import { drip, openConnection } from './helpers/net.js'
import { until } from './helpers/until.js'

// Small bounds keep the file fast; the checks below allow many times them, for a loaded machine.
const log = logCapture()
const { app } = await buildTestApp(t, { env: { HEADERS_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '2' }, logger: pino({ level: 'debug' }, log.stream) })
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as AddressInfo

/** Far past both bounds and Node's check of them, yet well short of the 30 s Node used to take. */
const CLOSED_WITHIN_MS = 10_000

function bodyOf (answer: string): unknown {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
}

const wentAway = 'the client went away before its request arrived'
const linesSaying = (msg: string) => log.lines.filter(line => line.msg === msg)

const requestTimeout = { statusCode: 408, code: 'REQUEST_TIMEOUT', error: 'Request Timeout', message: 'The request did not arrive in time; the connection is closed' }

t.test('a client dripping header lines is answered 408 and cut off after HEADERS_TIMEOUT_SECONDS (regression: held about a minute)', async t => {
  const connection = await openConnection(port)
  connection.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\n')
  // Nothing can close it sooner than its 1 s bound, however slow the machine: this is no race.
  await sleep(300)
  t.equal(connection.received(), '', 'still waiting for the headers well before the bound')
  const openFor = await drip(connection, 'X-Slow: yes\r\n', CLOSED_WITHIN_MS)
  t.ok(openFor !== undefined, `closed by the server within ${CLOSED_WITHIN_MS} ms (after ${openFor} ms)`)
  t.ok(openFor === undefined || openFor >= 1000, 'not before the bound')
  t.match(connection.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(connection.received(), /\r\nconnection: close\r\n/i)
  t.same(bodyOf(connection.received()), requestTimeout)
})

t.test('a client dripping its body is answered 408 and cut off after REQUEST_TIMEOUT_SECONDS', async t => {
  const connection = await openConnection(port)
  connection.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email":"')
  const openFor = await drip(connection, 'a', CLOSED_WITHIN_MS)
  t.ok(openFor !== undefined, `closed by the server within ${CLOSED_WITHIN_MS} ms (after ${openFor} ms)`)
  t.ok(openFor === undefined || openFor >= 2000, 'not before the bound')
  t.same(bodyOf(connection.received()), requestTimeout)
})

t.test('a client that goes silent after part of its body is answered 408 after REQUEST_TIMEOUT_SECONDS, not closed without a word', async t => {
  const connection = await openConnection(port)
  connection.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a')
  const openFor = await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)])
  connection.socket.destroy()
  t.ok(openFor !== undefined, `closed by the server within ${CLOSED_WITHIN_MS} ms (after ${openFor} ms)`)
  t.ok(openFor === undefined || openFor >= 2000, 'not before the bound')
  t.same(bodyOf(connection.received()), requestTimeout)
})

t.test('a request answered before its body came, whose body never comes, is closed after REQUEST_TIMEOUT_SECONDS without a second answer (regression: a 408 after its 401)', async t => {
  const connection = await openConnection(port)
  connection.socket.write('PATCH /users/me HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a')
  await until('the early answer', () => connection.received().includes('\r\n\r\n'), CLOSED_WITHIN_MS)
  const openFor = await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)])
  connection.socket.destroy()
  t.ok(openFor !== undefined, `closed by the server within ${CLOSED_WITHIN_MS} ms (after ${openFor} ms)`)
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 401'], 'its one answer')
})

// Regression: the body reader's ECONNRESET "aborted" was taken for the database's, logged as a
// warning of an outage and answered 503: anyone could fill the log with false alarms.
t.test('a client that hangs up while its body is arriving is no database outage', async t => {
  const before = linesSaying(wentAway).length
  const connection = await openConnection(port)
  connection.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email":"')
  await sleep(100)
  connection.socket.destroy()
  await until('the abort to be logged', () => linesSaying(wentAway).length > before || linesSaying('database unavailable').length > 0, CLOSED_WITHIN_MS)
  t.same(linesSaying('database unavailable'), [], 'no outage logged, here nor for the 408 above')
  t.equal(linesSaying(wentAway).at(-1)?.level, 20, 'logged at debug')
})

// Regression: a preconnected socket got an unasked 408, which a client sending its request just
// then could take for that request's answer.
t.test('a connection that sends nothing is closed after HEADERS_TIMEOUT_SECONDS without an answer', async t => {
  const connection = await openConnection(port)
  const openFor = await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)])
  connection.socket.destroy()
  t.ok(openFor !== undefined, `closed by the server within ${CLOSED_WITHIN_MS} ms (after ${openFor} ms)`)
  t.ok(openFor === undefined || openFor >= 1000, 'not before the bound')
  t.equal(connection.received(), '', 'nothing was written to it')
})

t.test('an idle keep-alive connection is not a slow request: it outlives the headers timeout', async t => {
  const connection = await openConnection(port)
  const health = 'GET /health HTTP/1.1\r\nHost: auth.example\r\n\r\n'
  const answered = () => connection.received().match(/HTTP\/1\.1 200 OK/g)?.length ?? 0
  connection.socket.write(health)
  // Idle for longer than the headers timeout from the first answer on, however late it came.
  await until('the first answer', () => answered() === 1, CLOSED_WITHIN_MS)
  await sleep(1500)
  connection.socket.write(health)
  // The second answer, or the connection closed under it: a fixed wait for the answer ended
  // before it came on a loaded machine.
  await until('the second answer', () => answered() === 2 || connection.socket.destroyed, CLOSED_WITHIN_MS)
  connection.socket.destroy()
  t.equal(answered(), 2, 'both requests answered on one connection')
})

t.test('headers past 16 KB (2000 cookies) are 431 HEADERS_TOO_LARGE in the catalogue\'s shape (regression: no code)', async t => {
  const cookie = Array.from({ length: 2000 }, (_, i) => `c${i}=v`).join('; ')
  const { status, headers, body } = await new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: '/users/me', agent: false, headers: { cookie } }, response => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', chunk => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }))
    })
    request.on('error', reject)
    request.end()
  })
  t.equal(status, 431)
  t.same(JSON.parse(body), {
    statusCode: 431,
    code: 'HEADERS_TOO_LARGE',
    error: 'Request Header Fields Too Large',
    message: 'The request headers are too large; send fewer or shorter headers (cookies included)'
  })
  t.equal(headers['content-type'], 'application/json; charset=utf-8')
  t.equal(headers['x-content-type-options'], 'nosniff', 'with the security headers of every answer')
  t.equal(headers['cache-control'], 'no-store', 'and no cache keeps it, as every error answer (regression: none)')
  t.equal(headers['x-request-id'], undefined, 'no request id: no request was read (docs/operations.md, Logs and request ids)')
})

t.test('a chunked body whose chunk extensions pass 16 KB is 413 BODY_TOO_LARGE, as Node would answer it', async t => {
  const connection = await openConnection(port)
  connection.socket.write(`POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;${'x'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`)
  t.ok(await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, 'the connection is closed')
  t.match(connection.received(), /^HTTP\/1\.1 413 Payload Too Large\r\n/)
  t.same(bodyOf(connection.received()), { statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large', message: 'The request body is too large' })
})

t.test('a request Node\'s parser refuses is 400 MALFORMED_REQUEST in the catalogue\'s shape (regression: no code)', async t => {
  const malformed = {
    'an unknown method': 'BREW /health HTTP/1.1\r\nHost: auth.example\r\n\r\n',
    'a header without a colon': 'GET /health HTTP/1.1\r\nHost auth.example\r\n\r\n',
    'both Content-Length and Transfer-Encoding (request smuggling)': 'POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
  }
  for (const [what, raw] of Object.entries(malformed)) {
    const connection = await openConnection(port)
    connection.socket.write(raw)
    t.ok(await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, `${what}: the connection is closed`)
    t.match(connection.received(), /^HTTP\/1\.1 400 Bad Request\r\n/, what)
    t.same(bodyOf(connection.received()), { statusCode: 400, code: 'MALFORMED_REQUEST', error: 'Bad Request', message: 'The request is not valid HTTP/1.1' }, what)
  }
})

// Regression: the refusal came with a reset while the client was still writing its body: a
// client might never read it, and nginx took the broken pipe for a failed instance.
t.test('a request Node\'s parser refuses while its body is coming: answered, the rest read and dropped, then closed without a reset', async t => {
  for (const [what, head] of Object.entries({
    'a control byte in a header': 'POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nX-A: a\x01b\r\n',
    'headers past 16 KB': `POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nX-A: ${'a'.repeat(17_000)}\r\n`
  })) {
    // As nginx writes a request: on to its end, whatever comes back meanwhile.
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    let received = ''
    const errors: string[] = []
    socket.on('data', chunk => { received += chunk.toString('latin1') })
    socket.on('error', error => { errors.push((error as NodeJS.ErrnoException).code ?? error.message) })
    const closed = new Promise(resolve => socket.once('close', resolve))
    await once(socket, 'connect')
    socket.write(`${head}Content-Type: application/json\r\nContent-Length: 400000\r\n\r\n`)
    await until(`${what}: the answer`, async () => /\r\n\r\n\{/.test(received), CLOSED_WITHIN_MS)
    for (let i = 0; i < 40 && !socket.destroyed; i++) {
      socket.write('b'.repeat(10_000))
      await sleep(5)
    }
    socket.end()
    t.ok(await Promise.race([closed.then(() => true), sleep(CLOSED_WITHIN_MS, false)]), `${what}: closed`)
    t.same(errors, [], `${what}: no reset while the body was sent`)
    t.match(received, /^HTTP\/1\.1 (400|431) /, what)
  }
})

// Regression: a body that went wrong after its request's answer (a URL the router refused, a
// type the service does not take) earned the request a second answer, a 400, taken by a client
// for the answer to its next request.
t.test('a request answered before its body came gets no second answer when the body then goes wrong', async t => {
  for (const [what, head] of Object.entries({
    'a URL the router refuses': 'POST /auth/%zz HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\n',
    'a type the service does not take': 'POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: text/plain\r\n'
  })) {
    const connection = await openConnection(port)
    connection.socket.write(`${head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`)
    await until(`${what}: the answer`, async () => /\r\n\r\n\{[^]*\}$/.test(connection.received()), CLOSED_WITHIN_MS)
    connection.socket.write('zz\r\nnot a chunk\r\n')
    t.ok(await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, `${what}: closed`)
    t.equal(connection.received().match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `${what}: one answer`)
  }
})

// Regression: a malformed request in the same chunk as the end of a body answered early, and a
// valid request between them, lost that request's answer: the connection was dropped as if
// the early answer's body had gone wrong.
t.test('a body answered early that ends well, then a request, then a malformed one, in one chunk: three answers', async t => {
  const connection = await openConnection(port)
  connection.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n')
  await until('the 415', async () => /\r\n\r\n\{[^]*\}$/.test(connection.received()), CLOSED_WITHIN_MS)
  connection.socket.write('helloGET /health HTTP/1.1\r\nHost: auth.example\r\n\r\nGARBAGE\r\n\r\n')
  t.ok(await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, 'closed')
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 415', 'HTTP/1.1 200', 'HTTP/1.1 400'])
})

t.test('what Node answers by itself comes in the catalogue\'s shape: an Expect it does not know takes its turn among the pipelined answers, CONNECT is refused (regression: 417 with no body; no answer)', async t => {
  const connection = await openConnection(port)
  const health = 'GET /health HTTP/1.1\r\nHost: auth.example\r\n\r\n'
  connection.socket.write(health + 'GET /health HTTP/1.1\r\nHost: auth.example\r\nExpect: something\r\n\r\n' + health)
  await until('three answers', async () => (connection.received().match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 3, CLOSED_WITHIN_MS)
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 200', 'HTTP/1.1 417', 'HTTP/1.1 200'], 'in order, none held (regression: the 417 waited for itself, and held the answers after it)')
  t.match(connection.received(), /\{"statusCode":417,"code":"EXPECTATION_FAILED",/)
  const head417 = connection.received().split('HTTP/1.1 ').find(answer => answer.startsWith('417'))?.split('\r\n\r\n')[0] ?? ''
  t.match(head417, /\r\ncache-control: no-store\r\n/i, 'no cache keeps it (regression: none)')
  connection.socket.destroy()

  // With a body announced that never comes: one answer, and the connection closed (regression: a 408 later, to the same request).
  const waiting = await openConnection(port)
  waiting.socket.write('POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nExpect: something\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n')
  t.ok(await Promise.race([waiting.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, 'closed after its 417')
  t.same(waiting.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 417'], 'one answer')

  const connecting = await openConnection(port)
  connecting.socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  t.ok(await Promise.race([connecting.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, 'CONNECT: the connection is closed')
  t.match(connecting.received(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(bodyOf(connecting.received()), { statusCode: 400, code: 'MALFORMED_REQUEST' })
})

t.test('the 417 of an unknown Expect carries the request id, the caller\'s or one the service makes (regression: none, though the docs promise it on every answer)', async t => {
  const connection = await openConnection(port)
  const expecting = (id: string) => `GET /health HTTP/1.1\r\nHost: auth.example\r\nExpect: something\r\n${id === '' ? '' : `X-Request-Id: ${id}\r\n`}\r\n`
  connection.socket.write(expecting('support-ticket-42') + expecting('') + expecting('not a token'))
  await until('three answers', async () => (connection.received().match(/HTTP\/1\.1 417/g) ?? []).length === 3, CLOSED_WITHIN_MS)
  connection.socket.destroy()
  const ids = [...connection.received().matchAll(/\r\nx-request-id: ([^\r]*)\r\n/gi)].map(match => match[1])
  t.equal(ids.length, 3, 'on each')
  t.equal(ids[0], 'support-ticket-42', 'the caller\'s, echoed')
  for (const id of ids.slice(1)) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'else one of its own, as for any request')
  t.notMatch(connection.received(), /x-ratelimit-/i, 'answered before the rate limits')
})

/**
 * A connection, and the server's side of it, that pipelines far more answer than the socket's
 * buffers hold, never read, and then `last`: a refusal that waits for the answers before it.
 */
async function behindUnreadAnswers (last: string) {
  const accepted = new Promise<Socket>(resolve => app.server.once('connection', resolve))
  const connection = await openConnection(port)
  const serverSide = await accepted
  connection.socket.pause()
  connection.socket.write('GET /docs/json HTTP/1.1\r\nHost: auth.example\r\n\r\n'.repeat(40) + last)
  return { connection, serverSide }
}

t.test('a refusal waits for the answers before it no longer than REQUEST_TIMEOUT_SECONDS: a client that never reads them is cut off (regression: held while it sent a byte now and then)', async t => {
  const { connection, serverSide } = await behindUnreadAnswers('BOGUS\r\n\r\n')
  const started = Date.now()
  const nudges = setInterval(() => { if (!connection.socket.destroyed) connection.socket.write('x') }, 300)
  try {
    await until('the server to close the connection', async () => serverSide.destroyed, CLOSED_WITHIN_MS)
  } finally {
    clearInterval(nudges)
    connection.socket.destroy()
  }
  t.ok(Date.now() - started >= 1500, 'not before its bound (2 s here)')
})

t.test('a CONNECT whose client resets while its refusal waits for earlier answers ends nothing but that connection (regression: the process exited)', async t => {
  const { connection, serverSide } = await behindUnreadAnswers('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  await sleep(300)
  connection.socket.resetAndDestroy()
  await until('the server side to close', async () => serverSide.destroyed, CLOSED_WITHIN_MS)
  await sleep(100)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'the service is still there')
})

t.test('a request whose client resets at once is no error of the service (regression: a 500 logged with a stack, the rate limit reading the address of a closed socket)', async t => {
  const errorsBefore = log.lines.filter(line => Number(line.level) >= 50).length
  await Promise.all(Array.from({ length: 10 }, async () => {
    const connection = await openConnection(port)
    connection.socket.write('GET /nope HTTP/1.1\r\nHost: auth.example\r\n\r\n')
    connection.socket.resetAndDestroy()
  }))
  await sleep(500)
  t.same(log.lines.filter(line => Number(line.level) >= 50).slice(errorsBefore), [], 'no error-level line')
})

t.test('a malformed request pipelined after valid ones is refused after their answers (regression: only the 400, though they ran)', async t => {
  const body = JSON.stringify({ email: `pipelined${Date.now()}@example.com`, password: 'a decent passphrase' })
  const connection = await openConnection(port)
  connection.socket.write(`POST /auth/register HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
    'GET /health HTTP/1.1\r\nHost: auth.example\r\n\r\n' +
    'BROKEN REQUEST LINE\r\n\r\n')
  // What arrives while the registration runs finds Node's parser still in its error.
  await sleep(20)
  connection.socket.write('more\r\n')
  t.ok(await Promise.race([connection.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined, 'the connection is closed')
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 201', 'HTTP/1.1 200', 'HTTP/1.1 400'], 'each request\'s answer, in order, then the refusal')
  t.match(connection.received(), /"user":\{/, 'the registration\'s own body')
  t.same(bodyOf(connection.received().slice(connection.received().lastIndexOf('HTTP/1.1 '))), { statusCode: 400, code: 'MALFORMED_REQUEST', error: 'Bad Request', message: 'The request is not valid HTTP/1.1' })
})

t.test('by default the headers must arrive within 10 s and the whole request within 30 s, checked every second; a silent connection is closed after 40 s', async t => {
  t.same(serverTimeoutsOf(loadConfig({})), { connectionTimeout: 40_000, headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 })
  t.equal(app.server.headersTimeout, 1000, 'the settings reach the server')
  t.equal(app.server.requestTimeout, 2000)
  t.equal(app.server.timeout, 12_000)
})

// Regression: the idle timeout was 30 s whatever REQUEST_TIMEOUT_SECONDS, so from 30 s on a
// client silent halfway through its body was closed without the 408 (the test above, at 2 s, could not tell).
t.test('whatever the request timeout, a silent connection outlives it by several checks: the 408 comes first', async t => {
  for (const seconds of [1, 10, 29, 30, 31, 60, 300]) {
    const timeouts = serverTimeoutsOf(loadConfig({ REQUEST_TIMEOUT_SECONDS: String(seconds), HEADERS_TIMEOUT_SECONDS: String(Math.min(seconds, 60)) }))
    t.ok(timeouts.connectionTimeout >= timeouts.requestTimeout + 5 * timeouts.connectionsCheckingInterval, `REQUEST_TIMEOUT_SECONDS=${seconds}: idle ${timeouts.connectionTimeout} ms`)
  }
})
