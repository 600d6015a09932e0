// The real process, as `npm start` runs it: embedded database under DATA_DIR, data surviving a restart.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import t from 'tap'
import { freePort } from './helpers/net.js'
import { newAccount } from './helpers/users.js'

const serverEntry = join(import.meta.dirname, '..', 'src', 'server.ts')

interface Running { process: ChildProcess, output: () => string, baseUrl: string }

function start (env: Record<string, string>, port: number): Running {
  let output = ''
  const child = spawn(process.execPath, ['--import', 'tsx', serverEntry], {
    env: { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout?.on('data', chunk => { output += chunk })
  child.stderr?.on('data', chunk => { output += chunk })
  return { process: child, output: () => output, baseUrl: `http://127.0.0.1:${port}` }
}

async function waitUntilReady (running: Running): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (running.process.exitCode !== null) throw new Error(`server exited: ${running.output()}`)
    try {
      const response = await fetch(`${running.baseUrl}/ready`)
      if (response.ok) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`server did not become ready: ${running.output()}`)
}

async function stop (running: Running): Promise<number | null> {
  running.process.kill('SIGTERM')
  const [code] = await once(running.process, 'exit')
  return code as number | null
}

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
  const registered = await fetch(`${first.baseUrl}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(account) })
  t.equal(registered.status, 201)
  const login = await fetch(`${first.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: account.email, password: account.password }) })
  const { accessToken } = await login.json() as { accessToken: string }
  t.equal(await stop(first), 0, 'SIGTERM stops cleanly')
  t.equal((await stat(join(dataDir, 'auth-secret'))).mode & 0o777, 0o600, 'the secret file is private')

  const second = start(env, port)
  await waitUntilReady(second)
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
  const [code] = await once(running.process, 'exit')
  t.equal(code, 1)
  t.match(running.output(), /Invalid configuration/)
  t.match(running.output(), /PORT: /)
})

t.test('production refuses to start without a real secret', async t => {
  const running = start({ NODE_ENV: 'production', DATABASE_URL: 'postgresql://127.0.0.1:1/none' }, await freePort())
  const [code] = await once(running.process, 'exit')
  t.equal(code, 1)
  t.match(running.output(), /AUTH_SECRET: required in production/)
})
