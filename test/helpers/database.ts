// A database of the test's own: a fresh PostgreSQL database (TEST_DATABASE_URL) or an in-memory embedded one.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres, type EmbeddedStart } from '../../src/db/embedded.js'
import { applyMigrations } from '../../src/db/schema-engine.js'

export interface TestDatabase {
  url: string
  poolSize: number
  drop: () => Promise<void>
}

const root = join(import.meta.dirname, '..', '..')
const migrationsDir = join(root, 'prisma', 'migrations')
const pgliteDist = join(root, 'node_modules', '@electric-sql', 'pglite', 'dist')
// Per checkout, emptied by `npm ci`: a fresh clone migrates once.
const cacheDir = join(root, 'node_modules', '.cache', 'auth-service-tests')

const serverUrlOf = (): string | undefined => process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL

/**
 * Creates an empty database that only this test uses; `drop` removes it. On a server
 * (TEST_DATABASE_URL) it is a new database named auth_test_*, made through that URL;
 * existing databases are never touched.
 */
export async function createEmptyDatabase (): Promise<TestDatabase> {
  const serverUrl = serverUrlOf()
  if (serverUrl === undefined) return await startEmbedded()
  return await createServerDatabase(serverUrl)
}

/**
 * An empty database with every migration applied. Migrating through the schema engine
 * costs far more than copying, so the migrations are applied once, to a template named by
 * their content, and each test gets a copy: `CREATE DATABASE … TEMPLATE` on a server, a
 * tarball of the data directory for the embedded database. Editing a migration makes a new
 * template; test/db/migrations.test.ts still migrates empty databases for real.
 */
export async function createTestDatabase (): Promise<TestDatabase> {
  const serverUrl = serverUrlOf()
  if (serverUrl === undefined) return await startEmbedded({ loadDataDir: await embeddedTemplate() })
  return await createServerDatabase(serverUrl, await serverTemplate(serverUrl))
}

export async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

function databaseUrl (serverUrl: string, name: string): string {
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

async function createServerDatabase (serverUrl: string, template?: string): Promise<TestDatabase> {
  const name = `auth_test_${randomBytes(6).toString('hex')}`
  await withClient(serverUrl, admin => admin.query(`CREATE DATABASE ${name}${template === undefined ? '' : ` TEMPLATE ${template}`}`))
  return {
    url: databaseUrl(serverUrl, name),
    poolSize: 5,
    drop: async () => { await withClient(serverUrl, admin => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) }
  }
}

let migrationsHash: Promise<string> | undefined

/** Names a template after the migrations it holds. */
function hashOfMigrations (): Promise<string> {
  migrationsHash ??= (async () => {
    const hash = createHash('sha256')
    const names = (await readdir(migrationsDir, { recursive: true })).sort()
    for (const name of names.filter(name => name.endsWith('.sql') || name.endsWith('.toml'))) {
      hash.update(`${name}\0`).update(await readFile(join(migrationsDir, name))).update('\0')
    }
    return hash.digest('hex').slice(0, 16)
  })()
  return migrationsHash
}

// Any number: serialises the test processes that would otherwise build the same template at once.
const TEMPLATE_LOCK = 7_313_001
let serverTemplateName: Promise<string> | undefined

/**
 * The migrated template database on the server, made by the first test process that needs
 * it (the others wait on an advisory lock) and kept for the next runs. It is built under
 * another name and renamed when complete, so a run that dies half-way leaves no template
 * that looks usable.
 */
function serverTemplate (serverUrl: string): Promise<string> {
  serverTemplateName ??= (async () => {
    const name = `auth_test_template_${await hashOfMigrations()}`
    const exists = async (admin: pg.Client) => (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1
    return await withClient(serverUrl, async admin => {
      if (await exists(admin)) return name
      await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK])
      try {
        if (await exists(admin)) return name
        const building = `${name}_building`
        await admin.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`)
        await admin.query(`CREATE DATABASE ${building}`)
        await applyMigrations(databaseUrl(serverUrl, building), { connectTimeoutSeconds: 30 })
        await admin.query(`ALTER DATABASE ${building} RENAME TO ${name}`)
        return name
      } finally {
        await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK])
      }
    })
  })()
  serverTemplateName.catch(() => { serverTemplateName = undefined })
  return serverTemplateName
}

let pgliteModules: Promise<EmbeddedStart> | undefined

/** PGlite's WASM and file bundle, compiled and read once per process rather than once per database. */
function embeddedModules (): Promise<EmbeddedStart> {
  pgliteModules ??= (async () => ({
    pgliteWasmModule: await WebAssembly.compile(await readFile(join(pgliteDist, 'pglite.wasm'))),
    fsBundle: new Blob([await readFile(join(pgliteDist, 'pglite.data'))])
  }))()
  return pgliteModules
}

async function startEmbedded (from: EmbeddedStart = {}): Promise<TestDatabase> {
  const embedded = await startEmbeddedPostgres(undefined, 0, { ...await embeddedModules(), ...from })
  return { url: embedded.url, poolSize: 1, drop: embedded.stop }
}

let embeddedTemplateDump: Promise<Blob> | undefined

/**
 * The migrated embedded database as a tarball, kept in a file named after the migrations
 * and PGlite's version; the first process to need it writes it (atomically, by rename).
 */
function embeddedTemplate (): Promise<Blob> {
  embeddedTemplateDump ??= (async () => {
    const { version } = JSON.parse(await readFile(join(pgliteDist, '..', 'package.json'), 'utf8')) as { version: string }
    const file = join(cacheDir, `pglite-${version}-${await hashOfMigrations()}.tar`)
    try {
      return new Blob([await readFile(file)])
    } catch {}
    const embedded = await startEmbeddedPostgres(undefined, 0, await embeddedModules())
    try {
      await applyMigrations(embedded.url, { connectTimeoutSeconds: 30 })
      const dump = await embedded.dump()
      await mkdir(cacheDir, { recursive: true })
      const partial = `${file}.${process.pid}`
      await writeFile(partial, Buffer.from(await dump.arrayBuffer()))
      await rename(partial, file)
      return dump
    } finally {
      await embedded.stop()
    }
  })()
  embeddedTemplateDump.catch(() => { embeddedTemplateDump = undefined })
  return embeddedTemplateDump
}
