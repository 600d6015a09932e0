// One owner per embedded data directory, when the owner died: a lock left by a service killed with SIGKILL is stale, and the next command
// and service take over at once. Real processes: SIGKILL is a real signal.
import t from 'tap'
import { embeddedOwners, login } from '../helpers/embedded-owner.js'
import { stopServer, waitUntilReady } from '../helpers/process.js'

const { command, service, lockHolder } = await embeddedOwners(t)

t.test('a lock left by a service killed with SIGKILL is stale: the next command and service take over at once', async t => {
  const killed = await service()
  await waitUntilReady(killed)
  const created = command('admin', ['create', '--email', 'boss@example.com'], 'a long admin passphrase 1\n')
  t.equal(await created.done, 0, created.output())
  killed.child.kill('SIGKILL')
  await killed.exited
  t.equal((await lockHolder()).pid, killed.child.pid, 'the dead service\'s lock is still there')
  const promoted = command('admin', ['promote', '--email', 'boss@example.com'])
  t.equal(await promoted.done, 0, promoted.output())
  // Every wait for the lock is said before the first pause (src/db/open.ts): no clock needed.
  t.notMatch(promoted.output(), /waiting/, 'a dead owner is not waited for')
  const next = await service()
  await waitUntilReady(next)
  t.equal((await lockHolder()).pid, next.child.pid)
  t.equal((await login(next, 'boss@example.com', 'a long admin passphrase 1')).status, 200, 'the data directory opens cleanly')
  t.equal((await stopServer(next)).code, 0)
})
