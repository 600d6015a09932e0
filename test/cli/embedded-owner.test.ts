// One owner per embedded data directory, while the owners are alive: a command goes through the running service, a second service refuses,
// a service waits for a command. Real processes (the service, db:migrate, admin): the lock is between processes, and SIGSTOP is a real signal.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { embeddedOwners, login } from '../helpers/embedded-owner.js'
import { until } from '../helpers/until.js'
import { postJson, stopServer, waitUntilReady } from '../helpers/process.js'

const { command, service, lockHolder, lockFile } = await embeddedOwners(t)

t.test('beside the running service, admin:create and db:migrate go through it; a second service refuses', async t => {
  const first = await service()
  await waitUntilReady(first)
  t.equal((await lockHolder()).pid, first.child.pid, 'the service owns the directory')
  const created = command('admin', ['create', '--email', 'boss@example.com'], 'a long admin passphrase 1\n')
  t.equal(await created.done, 0, created.output())
  t.match(created.output(), /Created admin boss@example.com/)
  t.equal((await login(first, 'boss@example.com', 'a long admin passphrase 1')).status, 200, 'the running service sees the new admin at once')
  // The commands share the service's one session: a statement either named would find the other's.
  const again = command('admin', ['create', '--email', 'deputy@example.com'], 'a long admin passphrase 2\n')
  t.equal(await again.done, 0, again.output())
  t.equal((await postJson(first, '/auth/register', { email: 'someone@example.com', password: 'a long user passphrase' })).status, 201, 'registration still works beside them')
  const migrated = command('db-migrate', [])
  t.equal(await migrated.done, 0, migrated.output())
  t.match(migrated.output(), /Database is up to date/)

  const second = await service()
  t.equal(await second.exited, 1, 'a second service on the same directory stops at once')
  t.match(second.output(), /in use by process \d+, another running service; stop it first, or give this one its own DATA_DIR/)
  t.equal((await login(first, 'boss@example.com', 'a long admin passphrase 1')).status, 200, 'the first one is unharmed')

  t.equal((await stopServer(first)).code, 0)
  t.equal(await readFile(lockFile, 'utf8').catch(() => 'gone'), 'gone', 'a clean stop releases the lock')
})

t.test('a service started while a command holds the directory waits for it, then starts', async t => {
  const migrate = command('db-migrate', [])
  await until('db:migrate to take the lock', async () => (await lockHolder()).pid === migrate.child.pid)
  migrate.child.kill('SIGSTOP')
  const server = await service()
  await until('the service to wait', () => /waiting for process \d+ to let go of the embedded database/.test(server.output()))
  t.notOk(server.output().includes('using the embedded database'), 'it has not opened the database')
  migrate.child.kill('SIGCONT')
  t.equal(await migrate.done, 0, migrate.output())
  await waitUntilReady(server)
  t.equal((await login(server, 'boss@example.com', 'a long admin passphrase 1')).status, 200, 'the admin created beside the first service survived its restart')
  t.equal((await stopServer(server)).code, 0)
})
