// The tests' own loopback helpers: a port handed to a server started later must not be one the kernel gives out.
import { createServer } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { ephemeralPortsStart, freePort } from './helpers/net.js'

t.test('freePort: below the ephemeral range, free, and not the same every time', async t => {
  const start = await ephemeralPortsStart()
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()))
  for (const port of ports) t.ok(port >= 10_000 && port < start, `${port} is below ${start}, where outgoing connections never land`)
  t.ok(new Set(ports).size > 1, 'chosen at random')
  const server = createServer().listen(ports[0], '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  t.pass('and a server can listen on it')
})

t.test('freePort: never a port browsers refuse to fetch from', async t => {
  const draws = [10_080, 10_081]
  t.equal(await freePort(() => draws.shift() ?? 10_082), 10_081, 'Chromium answers ERR_UNSAFE_PORT on 10080')
})
