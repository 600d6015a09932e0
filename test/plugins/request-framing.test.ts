// How requests arrive, over real TCP: a body in too many pieces is refused, a body answered before it is all in is read on only so far, an HTTP/1.1 request without Host is refused in the catalogue's shape.
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { maxBodyPiecesOf } from '../../src/plugins/request-framing.js'
import { apiSecurityHeaders } from '../../src/plugins/security-headers.js'
import { buildTestApp } from '../helpers/app.js'
import { openConnection, type Connection } from '../helpers/net.js'
import { until } from '../helpers/until.js'

const { app, config } = await buildTestApp(t)
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as AddressInfo

/** Far past what any of these takes, for a loaded machine. */
const CLOSED_WITHIN_MS = 10_000

/** `text` as a chunked body of one-byte chunks, and its last chunk. */
function oneByteChunks (text: string): string {
  return [...text].map(letter => `1\r\n${letter}\r\n`).join('') + '0\r\n\r\n'
}

/** A login body of exactly `length` bytes, padded with JSON whitespace. */
function loginBodyOf (length: number): string {
  const body = JSON.stringify({ identifier: 'nobody', password: 'not the password' })
  return '{' + ' '.repeat(length - body.length) + body.slice(1)
}

const chunkedLogin = 'POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'

/** A connection, and the server's side of it (to see what the server reads). */
async function connectionWithServerSide (): Promise<{ connection: Connection, serverSide: Socket }> {
  const accepted = new Promise<Socket>(resolve => app.server.once('connection', resolve))
  const connection = await openConnection(port)
  return { connection, serverSide: await accepted }
}

function headOf (answer: string): string {
  return answer.slice(0, answer.indexOf('\r\n\r\n') + 2)
}

function bodyOf (answer: string): unknown {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
}

/**
 * Writes `burst` (one-byte chunks) every `everyMs`, for at most CLOSED_WITHIN_MS; resolves to
 * whether the server closed the connection meanwhile, while they were still coming.
 */
async function closedWhileSending (connection: Connection, burst: string, everyMs: number): Promise<boolean> {
  const deadline = Date.now() + CLOSED_WITHIN_MS
  // The client's side is destroyed once the server has closed the connection.
  while (!connection.socket.destroyed && Date.now() < deadline) {
    if (!connection.socket.write(burst)) await Promise.race([new Promise(resolve => connection.socket.once('drain', resolve)), connection.closed, sleep(100)])
    else await sleep(everyMs)
  }
  return connection.socket.destroyed
}

t.test('a body may come in up to 1024 pieces at the default body limit, one per 512 bytes of a larger limit', async t => {
  t.equal(config.BODY_LIMIT_BYTES, 32_768, 'the default limit')
  t.equal(maxBodyPiecesOf(32_768), 1024)
  t.equal(maxBodyPiecesOf(1024), 1024, 'never fewer')
  t.equal(maxBodyPiecesOf(1_048_576), 2048)
})

t.test('a chunked body in 1024 one-byte chunks is read; in 1025 it is 413 BODY_TOO_LARGE (regression: every piece was read, 32 000 of them cost ~60 ms)', async t => {
  const connection = await openConnection(port)
  connection.socket.write(chunkedLogin + oneByteChunks(loginBodyOf(1024)))
  await until('the answer', () => /\r\n\r\n\{.*\}$/.test(connection.received()), CLOSED_WITHIN_MS)
  t.match(connection.received(), /^HTTP\/1\.1 401 /, 'read whole and answered by the route')
  t.match(headOf(connection.received()), /\r\nconnection: keep-alive\r\n/i, 'and the connection kept')
  connection.socket.destroy()

  const past = await openConnection(port)
  past.socket.write(chunkedLogin + oneByteChunks(loginBodyOf(1025)))
  await until('the answer', () => /\r\n\r\n\{.*\}$/.test(past.received()), CLOSED_WITHIN_MS)
  past.socket.destroy()
  t.match(past.received(), /^HTTP\/1\.1 413 Payload Too Large\r\n/)
  t.same(bodyOf(past.received()), { statusCode: 413, code: 'BODY_TOO_LARGE', error: 'Payload Too Large', message: 'The request body is too large' })
})

t.test('a body still coming in too many pieces is refused at once, and the connection closed', async t => {
  const { connection, serverSide } = await connectionWithServerSide()
  // Well within BODY_LIMIT_BYTES and REQUEST_TIMEOUT_SECONDS: only the count of pieces can end it.
  connection.socket.write(chunkedLogin + '1\r\n \r\n'.repeat(2000))
  t.ok(await closedWhileSending(connection, '1\r\n \r\n'.repeat(100), 5), 'closed while the pieces keep coming')
  t.match(connection.received(), /^HTTP\/1\.1 413 Payload Too Large\r\n/)
  t.ok(serverSide.destroyed, 'its side of the connection is gone')
})

t.test('an answer given before its request\'s body is all in reads on only so far: past 1024 more pieces the server closes the connection (regression: Node read the rest, piece by piece: 1.5 s for a body sent to GET /health)', async t => {
  const early = {
    'a body sent to GET /health, never rate-limited': 'GET /health HTTP/1.1\r\nHost: auth.example\r\nTransfer-Encoding: chunked\r\n\r\n',
    'a 404': 'GET /nope HTTP/1.1\r\nHost: auth.example\r\nTransfer-Encoding: chunked\r\n\r\n',
    'a 401 from a hook, before the body is read': 'PATCH /users/me HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    'a 415 for a body no parser reads': 'POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n',
    'a URL the router refuses': 'POST /admin/users/%E0%A4%A HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
  }
  for (const [what, head] of Object.entries(early)) {
    const { connection, serverSide } = await connectionWithServerSide()
    connection.socket.write(head + '1\r\n{\r\n')
    await until(`${what}: the answer`, () => connection.received().includes('\r\n\r\n'), CLOSED_WITHIN_MS)
    t.ok(await closedWhileSending(connection, '1\r\nx\r\n'.repeat(1000), 1), `${what}: the server closes the connection while the body keeps coming`)
    t.ok(serverSide.destroyed, `${what}: and reads no more of it`)
    t.equal(connection.received().match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `${what}: one answer`)
  }
})

// Regression: an early answer closed the connection while the proxy in front was still writing
// the body; nginx saw a broken pipe, answered 502 and took the instance for down.
t.test('an early answer to a body of a few pieces, as a proxy sends it, keeps the connection for the next request', async t => {
  const body = JSON.stringify({ profile: { bio: 'x'.repeat(30_000) } })
  const connection = await openConnection(port)
  connection.socket.write(`PATCH /users/me HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
  await until('the early answer', () => connection.received().includes('\r\n\r\n'), CLOSED_WITHIN_MS)
  for (let at = 0; at < body.length; at += 16_384) connection.socket.write(body.slice(at, at + 16_384))
  connection.socket.write('GET /health HTTP/1.1\r\nHost: auth.example\r\n\r\n')
  await until('both answers', () => (connection.received().match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 2, CLOSED_WITHIN_MS)
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 401', 'HTTP/1.1 200'])
  t.notMatch(connection.received(), /connection: close/i)
  t.notOk(connection.socket.destroyed, 'still open')
  connection.socket.destroy()
})

t.test('a request whose body was read whole keeps its connection', async t => {
  const connection = await openConnection(port)
  const body = loginBodyOf(100)
  const login = `POST /auth/login HTTP/1.1\r\nHost: auth.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  connection.socket.write(login + 'GET /health HTTP/1.1\r\nHost: auth.example\r\nContent-Length: 0\r\n\r\n')
  await until('both answers', () => (connection.received().match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 2, CLOSED_WITHIN_MS)
  t.same(connection.received().match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 401', 'HTTP/1.1 200'])
  t.notMatch(connection.received(), /connection: close/i)
  connection.socket.destroy()
})

t.test('an HTTP/1.1 request without Host is 400 MALFORMED_REQUEST in the catalogue\'s shape, with every answer\'s headers (regression: Node\'s bare 400)', async t => {
  const connection = await openConnection(port)
  connection.socket.write('GET /health HTTP/1.1\r\nX-Request-Id: no-host-1\r\n\r\n')
  await until('the answer', () => /\r\n\r\n\{.*\}$/.test(connection.received()), CLOSED_WITHIN_MS)
  connection.socket.destroy()
  t.match(connection.received(), /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.same(bodyOf(connection.received()), { statusCode: 400, code: 'MALFORMED_REQUEST', error: 'Bad Request', message: 'The request is not valid HTTP/1.1' })
  const head = headOf(connection.received())
  t.match(head, /\r\nx-request-id: no-host-1\r\n/i, 'the request id')
  t.match(head, /\r\ncache-control: no-store\r\n/i)
  t.notMatch(head, /x-ratelimit-/i, 'refused before the rate limits')
  for (const [name, value] of Object.entries(apiSecurityHeaders)) t.ok(head.toLowerCase().includes(`\r\n${name}: ${value.toLowerCase()}\r\n`), name)

  const older = await openConnection(port)
  older.socket.write('GET /health HTTP/1.0\r\n\r\n')
  t.ok(await Promise.race([older.closed, sleep(CLOSED_WITHIN_MS, undefined)]) !== undefined)
  t.match(older.received(), /^HTTP\/1\.1 200 OK\r\n/, 'HTTP/1.0 has no Host to require')
})
