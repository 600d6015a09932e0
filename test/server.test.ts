// The real process, as `npm start` runs it: embedded database under DATA_DIR, data surviving a restart.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort } from './helpers/net.js'
import { startServer, stopServer, waitUntilReady } from './helpers/process.js'
import { newAccount } from './helpers/users.js'

const start = (env: Record<string, string>, port: number) => startServer(env, { port })
const stop = async (server: ReturnType<typeof start>) => (await stopServer(server)).code

t.test('npm start with no configuration: embedded database and a development secret that survive restarts', async t => {
  const parent = await mkdtemp(join(tmpdir(), 'auth-data-'))
  t.teardown(() => rm(parent, { recursive: true, force: true }))
  // Not created beforehand, as on a fresh clone (regression: the first start failed on ENOENT).
  const dataDir = join(parent, 'nested', '.data')
  const port = await freePort()
  const env = { DATA_DIR: dataDir, COOKIE_SECURE: 'false', ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', ADMIN_EMAIL: 'boss@example.com', ADMIN_PASSWORD: 'bootstrap admin passphrase' }
  const account = newAccount()

  const first = start(env, port)
  await waitUntilReady(first)
  t.match(first.output(), /DEVELOPMENT secret/, 'loud warning about the development secret')
  t.match(first.output(), /applied [0-9]+ migration/)
  t.match(first.output(), /created the first admin, boss@example.com/, 'ADMIN_EMAIL bootstraps the first admin')
  t.notMatch(first.output(), /bootstrap admin passphrase/, 'its password is never logged')
  t.match(first.output(), `API docs at http://localhost:${port}/docs`, 'regression: the start log named port 3000 whatever PORT was')
  t.notMatch(first.output(), /DeprecationWarning/, 'regression: a query was issued on a connection busy with another')
  t.ok(first.logs().length > 0 && first.logs().length === first.output().trim().split('\n').length, 'not on a terminal: JSON lines only')
  const registered = await fetch(`${first.baseUrl}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(account) })
  t.equal(registered.status, 201)
  const login = await fetch(`${first.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: account.email, password: account.password }) })
  const { accessToken } = await login.json() as { accessToken: string }
  t.equal(await stop(first), 0, 'SIGTERM stops cleanly')
  t.equal((await stat(join(dataDir, 'auth-secret'))).mode & 0o777, 0o600, 'the secret file is private')

  // A person at a terminal reads lines, not JSON (the default there; a pipe needs asking).
  const second = start({ ...env, LOG_FORMAT: 'pretty' }, port)
  await waitUntilReady(second)
  t.same(second.logs(), [], 'pretty: no JSON line')
  t.match(second.output(), /\d\d:\d\d:\d\d\.\d{3}\] INFO: using the embedded database in /)
  t.match(second.output(), /database schema is up to date/)
  const me = await fetch(`${second.baseUrl}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(me.status, 200, 'the same secret and the same data after a restart')
  const again = await fetch(`${second.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: account.email, password: account.password }) })
  t.equal(again.status, 200)
  t.notMatch(second.output(), /first admin/, 'bootstrapping happens once')
  const boss = await fetch(`${second.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'boss@example.com', password: 'bootstrap admin passphrase' }) })
  const { accessToken: bossToken } = await boss.json() as { accessToken: string }
  const users = await fetch(`${second.baseUrl}/admin/users`, { headers: { authorization: `Bearer ${bossToken}` } })
  t.equal(users.status, 200, 'the bootstrapped admin can use the admin API')
  t.equal(await stop(second), 0)
})

t.test('a bad configuration stops the start with one line per problem', async t => {
  const running = start({ PORT: 'x', NODE_ENV: 'production' }, await freePort())
  t.equal(await running.exited, 1)
  t.match(running.output(), /Invalid configuration/)
  t.match(running.output(), /PORT: /)
})

t.test('production refuses to start without a real secret', async t => {
  const running = start({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://127.0.0.1:1/none' }, await freePort())
  t.equal(await running.exited, 1)
  t.match(running.output(), /AUTH_SECRET: required in production/)
})

// Regression: an empty development secret (a first start's write cut short) was taken, and every key derived from it.
t.test('a development secret file that cannot serve stops the start before the database: one fatal line naming the file, exit 1', async t => {
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await writeFile(join(dataDir, 'auth-secret'), '')
  const running = start({ DATA_DIR: dataDir }, await freePort())
  t.teardown(() => { running.child.kill('SIGKILL') })
  t.equal(await Promise.race([running.exited, new Promise(resolve => setTimeout(resolve, 20_000, 'still running'))]), 1)
  const fatal = running.logs().find(line => line.level === 60)
  t.match(fatal?.msg, `start-up failed: ${join(dataDir, 'auth-secret')} holds a development secret of 0 characters, fewer than the 32 AUTH_SECRET needs`)
  t.notMatch(running.output(), /using the embedded database/, 'the database was not opened')
})

t.test('a credential URL that does not parse stops the start with its name, never its password (regression: the fatal line wrote the URL)', async t => {
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  // An unencoded / or # in the password: each passed the old pattern, then new URL() threw at start.
  const unencoded: Array<Record<string, string>> = [{ SMTP_URL: 'smtp://mailer:pa/ss-hunter2@mail.example.com:587' }, { REDIS_URL: 'redis://:pa#ss-hunter2@127.0.0.1:6379' }]
  for (const env of unencoded) {
    const running = start({ DATA_DIR: dataDir, MIGRATE_ON_START: 'false', ...env }, await freePort())
    t.equal(await running.exited, 1)
    t.match(running.output(), `${Object.keys(env)[0]}: not a valid URL; percent-encode reserved characters in the password`)
    t.notMatch(running.output(), /hunter2/, 'the password is not in the output')
  }
})
