// The real server on an embedded database of its own, with logins slow enough (about 0.5 s of argon2 each) to act while one is in flight.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './net.js'
import { startServer, waitUntilReady, type ServerProcess } from './process.js'
import { until } from './until.js'

const slowHashing = { ARGON2_MEMORY_KIB: '131072', ARGON2_TIME_COST: '20' }

/** Started and ready; killed, and its data directory removed, when the test ends. */
export async function startSlowServer (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-shutdown-'))
  // At debug, each request is logged on arrival: how these tests see a request in flight.
  const server = startServer({ DATA_DIR: dataDir, COOKIE_SECURE: 'false', LOG_LEVEL: 'debug', ...slowHashing, ...env }, { port: await freePort() })
  t.teardown(async () => {
    server.child.kill('SIGKILL')
    await server.exited
    await rm(dataDir, { recursive: true, force: true })
  })
  await waitUntilReady(server)
  return server
}

/** Waits until `count` requests for `url` have reached the server. */
export async function arrival (server: ServerProcess, url: string, count = 1): Promise<void> {
  const arrived = () => server.logs().filter(line => line.msg === 'incoming request' && (line.req as { url?: string } | undefined)?.url === url).length >= count
  await until(`${count} request(s) for ${url}`, arrived)
}
