// Several processes migrating one fresh database at once (instances starting together, a pipeline's db:migrate): each migration applied exactly once.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { createEmptyDatabase, withClient } from '../helpers/database.js'
import { freePort } from '../helpers/net.js'
import { startServer, stopServer, waitUntilReady } from '../helpers/process.js'
import { programArgs } from '../helpers/program.js'

const serverUrl = process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL
const root = join(import.meta.dirname, '..', '..')
// The advisory lock key that `prisma migrate deploy` and the schema engine take.
const PRISMA_MIGRATION_LOCK = 72707369

t.test('two instances and db:migrate start together on a fresh database', {
  skip: serverUrl === undefined && 'needs TEST_DATABASE_URL: the embedded database takes one connection, so migrators cannot overlap'
}, async t => {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  const migrations = (await readdir(join(root, 'prisma', 'migrations'), { withFileTypes: true })).filter(entry => entry.isDirectory()).map(entry => entry.name).sort()
  const env = { DATABASE_URL: database.url, COOKIE_SECURE: 'false', ARGON2_MEMORY_KIB: '1024', ARGON2_TIME_COST: '1', AUTH_SECRET: 'a-shared-secret-for-both-instances-0123456789' }

  // Prisma's migration lock, held here until all three are queued on it: then they really race.
  const holder = new pg.Client({ connectionString: database.url })
  await holder.connect()
  t.teardown(() => holder.end())
  await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATION_LOCK])

  const servers = [startServer(env, { port: await freePort() }), startServer(env, { port: await freePort() })]
  t.teardown(() => Promise.all(servers.map(stopServer)))
  let cliOutput = ''
  let cliExit: Promise<unknown[]> | undefined
  /** db:migrate, started once a service waits for the lock: it starts in a fraction of a service's time. */
  function startCli (): void {
    const cli = spawn(process.execPath, programArgs('cli/db-migrate'), { env: { PATH: process.env.PATH, DATABASE_URL: database.url } })
    cli.stdout.on('data', chunk => { cliOutput += chunk })
    cli.stderr.on('data', chunk => { cliOutput += chunk })
    cliExit = once(cli, 'exit')
  }

  const waiting = async () => Number((await holder.query<{ n: string }>(
    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted", [PRISMA_MIGRATION_LOCK]
  )).rows[0]?.n)
  // All three, or as many as have arrived 8 s after the first: the engine gives up after waiting 10 s, and on a
  // busy machine processes started together can reach the lock seconds apart.
  let firstArrival: number | undefined
  let queued = 0
  const deadline = Date.now() + 60_000
  while (queued < 3 && (firstArrival === undefined || Date.now() - firstArrival < 8000)) {
    if (Date.now() > deadline) throw new Error(`nothing reached the lock: ${servers.map(server => server.output()).join('\n')}\n${cliOutput}`)
    await new Promise(resolve => setTimeout(resolve, 50))
    queued = await waiting()
    if (queued > 0 && firstArrival === undefined) {
      firstArrival = Date.now()
      startCli()
    }
  }
  t.ok(queued >= 2, `${queued} of them waiting for the migration lock at once`)
  await holder.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATION_LOCK])
  const [cliCode] = await cliExit ?? [null]
  await Promise.all(servers.map(server => waitUntilReady(server)))

  t.equal(cliCode, 0, `db:migrate succeeded: ${cliOutput.trim()}`)
  const applied = servers.map(server => server.logs().find(line => /^(applied \d+ migration|database schema is up to date)/.test(String(line.msg)))?.applied as string[] | undefined)
  const cliApplied = /^Applied \d+ migrations?: (.*)$/m.exec(cliOutput)?.[1]?.split(', ') ?? []
  t.same([...applied.flatMap(names => names ?? []), ...cliApplied].sort(), migrations, 'each migration applied by exactly one of the three')
  const rows = await withClient(database.url, async client => (await client.query<{ migration_name: string, finished_at: Date | null }>('SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name')).rows)
  t.same(rows.map(row => row.migration_name), migrations, 'each recorded once')
  t.ok(rows.every(row => row.finished_at !== null), 'all finished')

  const registered = await fetch(`${servers[0]?.baseUrl}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'both@example.com', password: 'a passphrase for both' }) })
  t.equal(registered.status, 201)
  const login = await fetch(`${servers[1]?.baseUrl}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'both@example.com', password: 'a passphrase for both' }) })
  t.equal(login.status, 200, 'both instances serve the same data')
})
