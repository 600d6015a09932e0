// A client's bytes in the request line reach the log printable: no control character a terminal or a line-splitting reader acts on.
// (Node's parser refuses such bytes in the path itself, before any log line.)
import { connect } from 'node:net'
import t from 'tap'
import { pino } from 'pino'
import { logRedaction } from '../../src/log-redaction.js'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { logCapture } from '../helpers/mail.js'

/** Sends `head` as raw bytes (Latin-1 for every character up to 0xff) and waits for the answer to end. */
async function sendRaw (port: number, head: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.end(Buffer.from(head, 'latin1')) })
    const chunks: Buffer[] = []
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('latin1')) })
  })
}

/** An app logging every line, as deployed, into `capture`, and listening on `port`. */
async function loggedApp (t: Parameters<typeof buildTestApp>[0]) {
  const capture = logCapture()
  const { app } = await buildTestApp(t, { logger: pino({ level: 'trace', ...logRedaction }, capture.stream) })
  const { port } = new URL((await listen(app)).baseUrl)
  return { app, port: Number(port), capture }
}

// C1's CSI and NEL, and U+202E (a right-to-left override) sent as UTF-8: Node reads each byte as Latin-1, 0x80 a C1 control.
const controls = '\x9b31m\x85\xe2\x80\xae'
// eslint-disable-next-line no-control-regex -- the characters the log must not hold
const unprintable = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/

t.test('a host and a version header with C1 controls are logged escaped (regression: logged as sent)', async t => {
  const { app, port, capture } = await loggedApp(t)
  const answer = await sendRaw(port, `GET /users/me HTTP/1.1\r\nHost: evil${controls}.example\r\nAccept-Version: 1${controls}\r\nConnection: close\r\n\r\n`)
  t.match(answer, /^HTTP\/1\.1 401 /, 'the request was answered')
  await app.close()
  const line = capture.lines.find(entry => (entry.req as { host?: string } | undefined)?.host?.startsWith('evil') === true)
  t.ok(line, 'the request was logged')
  const req = line?.req as Record<string, string>
  t.equal(req.host, 'evil\\u009b31m\\u0085\u00e2\\u0080\u00ae.example', 'the host, each control escaped (â and ® are printable)')
  t.equal(req.version, '1\\u009b31m\\u0085\u00e2\\u0080\u00ae', 'the version header')
  t.notMatch(JSON.stringify(capture.lines), unprintable, 'no line holds one')
})

// Regression: a 15 KB Host header of C1 bytes, each escaped to six characters (seven once in JSON), made a 105 KB line
// for a request refused at once (a foreign origin's 403), and a long path was logged whole.
t.test('a request line\'s host, path and version are logged cut to a bound, however long they came', async t => {
  const { app, port, capture } = await loggedApp(t)
  const answer = await sendRaw(port, `POST /${'p'.repeat(5000)} HTTP/1.1\r\nHost: big${'\x85'.repeat(5000)}\r\nOrigin: https://evil.example\r\nAccept-Version: ${'9'.repeat(1000)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
  t.match(answer, /^HTTP\/1\.1 (403|404) /, 'the request was answered')
  await app.close()
  const lines = capture.lines.filter(entry => (entry.req as { host?: string } | undefined)?.host?.startsWith('big') === true)
  t.ok(lines.length > 0, 'the request was logged')
  for (const line of lines) {
    const req = line.req as Record<string, string>
    t.equal(req.host, `big${'\\u0085'.repeat(267)}…`, 'the host: 270 characters, then escaped')
    t.equal(req.url, `/${'p'.repeat(511)}…`, 'the path: 512 characters')
    t.equal(req.version, `${'9'.repeat(64)}…`, 'the version header: 64')
    t.ok(JSON.stringify(line).length < 4096, 'a line of a few kilobytes at most')
  }
})
