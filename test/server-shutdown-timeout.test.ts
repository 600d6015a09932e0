// The real process on SIGTERM when requests in flight cannot finish within SHUTDOWN_TIMEOUT_SECONDS: it exits 1 at the deadline.
import t from 'tap'
import { postJson, stopServer } from './helpers/process.js'
import { arrival, startSlowServer } from './helpers/slow-server.js'
import { newAccount } from './helpers/users.js'

t.test('a shutdown that cannot finish within SHUTDOWN_TIMEOUT_SECONDS exits 1 at the deadline', async t => {
  const server = await startSlowServer(t, { SHUTDOWN_TIMEOUT_SECONDS: '1' })
  const account = newAccount()
  t.equal((await postJson(server, '/auth/register', account)).status, 201)
  // More hashing than the hashing threads (one per core) get through in a second.
  const logins = Array.from({ length: 9 }, () => postJson(server, '/auth/login', { email: account.email, password: account.password }).catch(() => null))
  // Every one of them in flight before the signal, or a late one is refused instead of hashed.
  await arrival(server, '/auth/login', 9)
  const signalled = Date.now()
  const { code } = await stopServer(server)
  await Promise.all(logins)
  t.equal(code, 1, 'exit code 1')
  // Measured at the decision: the exit itself waits for hashes already queued in the thread pool.
  const timedOut = server.logs().find(line => line.msg === 'killed by timeout (1000ms)')
  const ms = Number(timedOut?.time) - signalled
  // Far under the default 10 s: the setting was used. The upper bound leaves a loaded machine's timer room.
  t.ok(ms >= 900 && ms < 5000, `gave up ${ms} ms after SIGTERM (timeout 1 s)`)
})
