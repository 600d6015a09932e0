// A crash under load loses nothing that was answered 2xx and leaves nothing half-written. Starts real processes: only a real SIGKILL in the middle of real requests shows that.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { createTestDatabase } from './helpers/database.js'
import { freePort } from './helpers/net.js'
import { postJson, startServer, stopServer, waitUntilReady, type ServerProcess } from './helpers/process.js'
import { newAccount, type Account } from './helpers/users.js'

const onServer = process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== ''
// The kill comes once this much has been acknowledged, or at the bounds, whichever is first.
const ENOUGH = { requests: 150, heldTokens: 10 }
const MAX_LOAD_MS = 20_000
const MAX_REQUESTS = 600
const WORKERS = 6

/** How to reach the database once the service runs again: the server's URL, or the embedded one through the service. */
let databaseUrl: () => Promise<string>
const env: Record<string, string> = {
  COOKIE_SECURE: 'false',
  ARGON2_MEMORY_KIB: '1024',
  ARGON2_TIME_COST: '1',
  // The restart must fit in the window in which a client that lost a refresh's answer may retry it.
  REFRESH_REUSE_GRACE_SECONDS: '60',
  RATE_LIMIT_DEFAULT: '100000/60',
  RATE_LIMIT_LOGIN_IP: '100000/60',
  RATE_LIMIT_LOGIN_ACCOUNT: '100000/60',
  RATE_LIMIT_REGISTER: '100000/60',
  RATE_LIMIT_REFRESH: '100000/60',
  LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS: '0'
}
if (onServer) {
  const database = await createTestDatabase()
  t.teardown(database.drop)
  env.DATABASE_URL = database.url
  databaseUrl = async () => database.url
} else {
  const dataDir = await mkdtemp(join(tmpdir(), 'auth-crash-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  env.DATA_DIR = dataDir
  databaseUrl = async () => (JSON.parse(await readFile(join(dataDir, 'pglite.lock'), 'utf8')) as { url: string }).url
}

async function post (server: ServerProcess, path: string, body: unknown): Promise<{ status: number, json: Record<string, unknown> }> {
  const response = await postJson(server, path, body)
  return { status: response.status, json: await response.json().catch(() => ({})) as Record<string, unknown> }
}

/** What the clients were told: every account answered 201, and the refresh token each holds. */
interface Acknowledged {
  accounts: Account[]
  /** By account email: the last refresh token the client received (from a 200). */
  heldTokens: Map<string, string>
}

/** Registrations, logins and refreshes from several clients at once, until `stop` says so. */
async function mixedLoad (server: ServerProcess, seen: Acknowledged, stop: () => boolean, counted: () => number): Promise<void> {
  async function client (): Promise<void> {
    while (!stop()) {
      const account = newAccount()
      counted()
      if ((await post(server, '/auth/register', account)).status !== 201) continue
      seen.accounts.push(account)
      if (stop()) return
      counted()
      const login = await post(server, '/auth/login', { email: account.email, password: account.password })
      if (login.status !== 200) continue
      seen.heldTokens.set(account.email, login.json.refreshToken as string)
      for (let i = 0; i < 3 && !stop(); i++) {
        counted()
        const refreshed = await post(server, '/auth/refresh', { refreshToken: seen.heldTokens.get(account.email) })
        if (refreshed.status === 200) seen.heldTokens.set(account.email, refreshed.json.refreshToken as string)
      }
    }
  }
  // Requests cut by the kill fail: their outcome is unknown to the client, and nothing is asserted of them.
  await Promise.all(Array.from({ length: WORKERS }, () => client().catch(() => {})))
}

t.test(`SIGKILL under a mixed load, restart (${onServer ? 'PostgreSQL' : 'embedded database'}): every 2xx is there, nothing half-written`, async t => {
  const port = await freePort()
  const first = startServer(env, { port })
  t.teardown(() => { first.child.kill('SIGKILL') })
  await waitUntilReady(first)

  let requests = 0
  let killed = false
  const started = Date.now()
  const seen: Acknowledged = { accounts: [], heldTokens: new Map() }
  const enough = () => (requests >= ENOUGH.requests && seen.heldTokens.size >= ENOUGH.heldTokens) || requests >= MAX_REQUESTS || Date.now() - started > MAX_LOAD_MS
  const load = mixedLoad(first, seen, () => killed, () => ++requests)
  // Killed in full flight: requests are in progress at that very moment.
  while (!enough()) await new Promise(resolve => setTimeout(resolve, 20))
  first.child.kill('SIGKILL')
  killed = true
  await first.exited
  await load
  t.ok(seen.accounts.length > 0 && seen.heldTokens.size > 0, `load before the kill: ${requests} requests, ${seen.accounts.length} accounts`)

  const second = startServer(env, { port })
  t.teardown(() => stopServer(second))
  await waitUntilReady(second)

  const logins = await Promise.all(seen.accounts.map(account => post(second, '/auth/login', { email: account.email, password: account.password })))
  t.same(logins.filter(login => login.status !== 200).map(login => login.status), [], 'every account answered 201 exists and logs in')
  const refreshes = await Promise.all([...seen.heldTokens.values()].map(refreshToken => post(second, '/auth/refresh', { refreshToken })))
  t.same(refreshes.filter(refresh => refresh.status !== 200).map(refresh => refresh.json.code), [], 'every refresh token a client holds still refreshes (within the grace window when its last answer was lost)')

  const client = new pg.Client({ connectionString: await databaseUrl() })
  await client.connect()
  try {
    const count = async (sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0]?.n)
    t.equal(await count('SELECT count(*) AS n FROM "User" u LEFT JOIN "Profile" p ON p."userId" = u.id WHERE p."userId" IS NULL'), 0, 'no user without a profile')
    t.equal(await count('SELECT count(*) AS n FROM "Session" s LEFT JOIN "User" u ON u.id = s."userId" WHERE u.id IS NULL'), 0, 'no session without a user')
    t.equal(await count('SELECT count(*) AS n FROM "User" u WHERE u."emailVerifiedAt" IS NULL AND NOT EXISTS (SELECT 1 FROM "OneTimeToken" o WHERE o."userId" = u.id)'), 0, 'every new account has its verification token')
    t.ok(await count('SELECT count(*) AS n FROM "User"') >= seen.accounts.length)
  } finally {
    await client.end()
  }
  t.equal((await stopServer(second)).code, 0, 'the restarted service stops cleanly')
})
