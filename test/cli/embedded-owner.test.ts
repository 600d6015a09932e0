// One owner per embedded data directory. Starts real processes (the service, db:migrate, admin): the lock is between processes, and SIGKILL/SIGSTOP are real signals.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { freePort } from '../helpers/net.js'
import { startServer, stopServer, waitUntilReady, type ServerProcess } from '../helpers/process.js'
import { programArgs } from '../helpers/program.js'

const dataDir = await mkdtemp(join(tmpdir(), 'auth-owner-'))
const lockFile = join(dataDir, 'pglite.lock')
const cheap = { ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', ARGON2_NICE: '0' }
const env = { DATA_DIR: dataDir, COOKIE_SECURE: 'false', ...cheap }
const running = new Set<ChildProcess>()
t.teardown(async () => {
  for (const child of running) child.kill('SIGKILL')
  await rm(dataDir, { recursive: true, force: true })
})

interface Run { child: ChildProcess, output: () => string, done: Promise<number | null> }

/** A command of package.json, with `env` only. */
function command (script: 'admin' | 'db-migrate', args: string[], stdin = ''): Run {
  const child = spawn(process.execPath, [...programArgs(`cli/${script}`), ...args], { env: { PATH: process.env.PATH, ...env } })
  running.add(child)
  let output = ''
  child.stdout?.on('data', chunk => { output += chunk })
  child.stderr?.on('data', chunk => { output += chunk })
  child.stdin?.end(stdin)
  const done = once(child, 'exit').then(([code]) => { running.delete(child); return code as number | null })
  return { child, output: () => output, done }
}

async function service (): Promise<ServerProcess> {
  const server = startServer(env, { port: await freePort() })
  running.add(server.child)
  server.exited.then(() => running.delete(server.child)).catch(() => {})
  return server
}

const login = (server: ServerProcess, email: string, password: string) => fetch(`${server.baseUrl}/auth/login`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password })
})

async function until (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const lockHolder = async () => JSON.parse(await readFile(lockFile, 'utf8').catch(() => '{}')) as { pid?: number, url?: string }

t.test('beside the running service, admin:create and db:migrate go through it; a second service refuses', async t => {
  const first = await service()
  await waitUntilReady(first)
  t.equal((await lockHolder()).pid, first.child.pid, 'the service owns the directory')
  const created = command('admin', ['create', '--email', 'boss@example.com'], 'a long admin passphrase 1\n')
  t.equal(await created.done, 0, created.output())
  t.match(created.output(), /Created admin boss@example.com/)
  t.equal((await login(first, 'boss@example.com', 'a long admin passphrase 1')).status, 200, 'the running service sees the new admin at once')
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

t.test('a lock left by a service killed with SIGKILL is stale: the next command and service take over at once', async t => {
  const killed = await service()
  await waitUntilReady(killed)
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
