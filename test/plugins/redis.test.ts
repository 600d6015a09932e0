// The Redis connection: a setting Redis refuses stops the start; an unreachable Redis does not.
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import { redis } from '../../src/plugins/redis.js'
import { freePort } from '../helpers/net.js'

const start = async (t: { teardown: (fn: () => unknown) => void }, url: string) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(redis, { url })
  await app.ready()
  return app
}

/** A server that answers every command with `reply` (a RESP error line), as a Redis in that state would: its port. */
async function redisAnswering (t: { teardown: (fn: () => unknown) => void }, reply: string): Promise<number> {
  const server = createServer(socket => {
    socket.on('data', () => { socket.write(`${reply}\r\n`) })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  return (server.address() as AddressInfo).port
}

// Regression: a REDIS_URL naming a database Redis does not have started on db 0, saying nothing:
// its counters were not the ones the other instances shared.
t.test('a database Redis does not have refuses the start, naming the variable and not the URL', async t => {
  await t.rejects(start(t, 'redis://127.0.0.1:6379/99'), { message: 'REDIS_URL: Redis refused the connection\'s setup: ERR DB index is out of range' })
})

t.test('a database Redis has: connected', async t => {
  const app = await start(t, 'redis://127.0.0.1:6379/1')
  t.equal(app.redis?.status, 'ready')
})

t.test('an unreachable Redis does not stop the start', async t => {
  const app = await start(t, `redis://127.0.0.1:${await freePort()}`)
  t.not(app.redis?.status, 'ready', 'started all the same; the rate limits count in memory')
})

// Regression: any answer Redis gave the connection's first command refused the start, a BUSY
// one too (a long script running): the instances restarted meanwhile did not come up.
t.test('a Redis that answers BUSY does not stop the start', async t => {
  const port = await redisAnswering(t, '-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.')
  const app = await start(t, `redis://127.0.0.1:${port}`)
  t.not(app.redis?.status, 'ready', 'started all the same; the rate limits count in memory')
})

// Regression: only the errors of a list refused the start; a cluster-mode Redis's refusal of
// any `/db` started the instance on db 0, saying nothing.
t.test('a Redis that refuses the connection\'s setup otherwise refuses the start too', async t => {
  const port = await redisAnswering(t, '-ERR SELECT is not allowed in cluster mode')
  await t.rejects(start(t, `redis://127.0.0.1:${port}/9`), { message: 'REDIS_URL: Redis refused the connection\'s setup: ERR SELECT is not allowed in cluster mode' })
})
