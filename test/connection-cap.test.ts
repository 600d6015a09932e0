// MAX_CONNECTIONS over real TCP: past it a new connection is closed unanswered and the refusals are logged, while those already open are served.
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t from 'tap'
import { maxConnectionsOf, openFileLimit } from '../src/config-derived.js'
import { loadConfig } from '../src/config.js'
import { buildTestApp } from './helpers/app.js'
import { logCapture } from './helpers/mail.js'
import { openConnection, type Connection } from './helpers/net.js'
import { until } from './helpers/until.js'

const log = logCapture()
const { app } = await buildTestApp(t, { env: { MAX_CONNECTIONS: '16' }, logger: pino({ level: 'info' }, log.stream) })
await app.listen({ host: '127.0.0.1', port: 0 })
const { port } = app.server.address() as AddressInfo

const health = 'GET /health HTTP/1.1\r\nHost: auth.example\r\n\r\n'
/** What the server sent once `count` answers are in. */
async function answered (connection: Connection, count = 1): Promise<string> {
  await until(`${count} answer(s)`, () => connection.received().split('HTTP/1.1 ').length > count, 10_000)
  return connection.received()
}

// Regression: one client holding keep-alive connections took every file descriptor, and the process stopped.
t.test('past MAX_CONNECTIONS a new connection is closed unanswered; the open ones are served, and a freed place is taken again', async t => {
  const held = await Promise.all(Array.from({ length: 16 }, async () => await openConnection(port)))
  for (const connection of held) connection.socket.write(health)
  for (const connection of held) t.match(await answered(connection), /^HTTP\/1\.1 200 /)

  const refused = await openConnection(port)
  refused.socket.write(health)
  await refused.closed
  t.equal(refused.received(), '', 'closed with no answer')
  held[0]?.socket.write(health)
  t.match(await answered(held[0] as Connection, 2), /200 OK[\s\S]*200 OK/, 'an open connection is still served')
  t.ok(log.lines.some(line => line.msg === 'connections refused: MAX_CONNECTIONS are open' && line.maxConnections === 16 && line.level === 40), 'the refusal is logged')

  held[1]?.socket.destroy()
  await until('the place to be freed', async () => await new Promise<boolean>(resolve => { app.server.getConnections((_, count) => { resolve(count < 16) }) }), 10_000)
  const next = await openConnection(port)
  next.socket.write(health)
  t.match(await answered(next), /^HTTP\/1\.1 200 /, 'the freed place serves a new connection')
  for (const connection of [...held, next]) connection.socket.destroy()
})

t.test('the default: the open-file limit less 256 (512 with the embedded database), at most 16384; MAX_CONNECTIONS when set', async t => {
  const config = (env: Record<string, string> = {}) => loadConfig(env)
  const limits = (soft: string) => () => `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 1048576              files\n`
  t.equal(openFileLimit(limits('1024')), 1024)
  t.equal(openFileLimit(limits('unlimited')), null)
  t.equal(openFileLimit(() => { throw new Error('no /proc here') }), null)
  const onServer = (env: Record<string, string> = {}) => config({ DATABASE_URL: 'postgresql://db.internal/auth', ...env })
  t.equal(maxConnectionsOf(onServer(), 1024), 768)
  t.equal(maxConnectionsOf(config(), 1024), 512, 'the embedded database keeps more for its files')
  t.equal(maxConnectionsOf(onServer(), 1_048_576), 16_384, 'a million descriptors would be gigabytes of connections')
  t.equal(maxConnectionsOf(onServer(), 200), 16, 'never fewer than 16')
  t.equal(maxConnectionsOf(config(), null), 16_384)
  t.equal(maxConnectionsOf(config({ MAX_CONNECTIONS: '50000' }), 1024), 50_000)
  t.throws(() => config({ MAX_CONNECTIONS: '8' }), /MAX_CONNECTIONS/)
})
