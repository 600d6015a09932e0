// A database of the test's own: a fresh PostgreSQL database (TEST_DATABASE_URL) or an in-memory embedded one.
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { startEmbeddedPostgres, type EmbeddedPostgres, type EmbeddedStart } from '../../src/db/embedded.js'
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
  if (serverUrl === undefined) return await embeddedTestDatabase()
  return await createServerDatabase(serverUrl, await serverTemplate(serverUrl))
}

export async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>, { queryTimeoutMs }: { queryTimeoutMs?: number } = {}): Promise<T> {
  const client = new pg.Client({ connectionString: url, ...(queryTimeoutMs === undefined ? {} : { query_timeout: queryTimeoutMs }) })
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

/**
 * PGlite's WASM and file bundle, compiled and read once per process rather than once per
 * database; and a buffer pool of 16 MB instead of 128, which starts each database about
 * 0.4 s sooner (the pool is set up at every start) and is more than a test's rows need.
 */
function embeddedModules (): Promise<EmbeddedStart> {
  pgliteModules ??= (async () => ({
    pgliteWasmModule: await WebAssembly.compile(await readFile(join(pgliteDist, 'pglite.wasm'))),
    fsBundle: new Blob([await readFile(join(pgliteDist, 'pglite.data'))]),
    startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']
  }))()
  return pgliteModules
}

async function startEmbedded (from: EmbeddedStart = {}): Promise<TestDatabase> {
  const embedded = await startEmbeddedPostgres(undefined, 0, { ...await embeddedModules(), ...from })
  return { url: embedded.url, poolSize: 1, drop: embedded.stop }
}

/**
 * A migrated embedded database for one test. Starting one from the template (untarring 40 MB
 * and starting PostgreSQL in WebAssembly) took seconds, most of the embedded pass; so a database
 * a test gives back is emptied and kept for the next test of the process, unless that test
 * changed more than rows (see `emptied`).
 */
async function embeddedTestDatabase (): Promise<TestDatabase> {
  let given = spare
  if (given === undefined) {
    given = await startEmbeddedPostgres(undefined, 0, { ...await embeddedModules(), loadDataDir: await embeddedTemplate() })
    templateCatalog ??= await withClient(given.url, catalogOf)
  } else {
    spare = undefined
    spareWanted = true
    clearTimeout(spareStop)
  }
  let dropped = false
  return {
    url: given.url,
    poolSize: 1,
    // Once only: a second drop would empty the database of the test that has it next.
    drop: async () => {
      if (dropped) return
      dropped = true
      await giveBack(given)
    }
  }
}

/**
 * One emptied embedded database waits for the next test, for half a second: a PGlite started
 * from a tarball keeps its process alive until it is stopped, so a spare nobody takes ends the
 * process's last test this way.
 */
let spare: EmbeddedPostgres | undefined
/** No spare is waiting, nor being emptied. */
let spareWanted = true
let spareStop: NodeJS.Timeout | undefined
let templateCatalog: string | undefined

async function giveBack (embedded: EmbeddedPostgres): Promise<void> {
  // The slot is taken at once: two databases given back together must not both become the spare.
  const keep = spareWanted
  spareWanted = false
  if (keep && templateCatalog !== undefined && await closedSoon(embedded) &&
    await emptied(embedded.url, templateCatalog) && await closedSoon(embedded)) {
    spare = embedded
    spareStop = setTimeout(() => {
      spare = undefined
      spareWanted = true
      embedded.stop().catch(() => {})
    }, 500)
    return
  }
  if (keep) spareWanted = true
  await embedded.stop()
}

/**
 * Whether the connections close within a moment (a socket's end reaches the embedded server a
 * tick after the client's), so that no client of one test reaches the next.
 */
async function closedSoon (embedded: EmbeddedPostgres): Promise<boolean> {
  for (let waited = 0; embedded.connections() > 0; waited += 10) {
    if (waited >= 500) return false
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return true
}

/**
 * What makes a database the template's besides its rows: the schema (tables, columns, defaults,
 * constraints, indexes, triggers, functions, types, operators, casts, comments), the planner's
 * statistics, large objects, the roles and the settings, as one digest.
 * Tests that break a table on purpose (a trigger that fails, a column renamed) change it.
 */
const CATALOG = `
  SELECT md5(string_agg(item, E'\n' ORDER BY item)) AS digest FROM (
    SELECT format('class %s %s %s %s %s %s %s', oid, relname, relkind, reloptions, relacl, relrowsecurity, relforcerowsecurity) FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT format('column %s %s %s %s %s', attrelid, attname, atttypid, attnotnull, attisdropped) FROM pg_attribute
      WHERE attnum > 0 AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
    UNION ALL SELECT format('default %s %s %s', adrelid, adnum, pg_get_expr(adbin, adrelid)) FROM pg_attrdef
    UNION ALL SELECT format('constraint %s %s', oid, pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT format('trigger %s %s', oid, tgenabled) FROM pg_trigger
    UNION ALL SELECT format('event trigger %s', oid) FROM pg_event_trigger
    UNION ALL SELECT format('rule %s', oid) FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
    UNION ALL SELECT format('policy %s', oid) FROM pg_policy
    UNION ALL SELECT format('function %s %s', oid, md5(prosrc)) FROM pg_proc WHERE pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
    UNION ALL SELECT format('type %s %s', oid, typname) FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT format('label %s %s', enumtypid, enumlabel) FROM pg_enum
    UNION ALL SELECT format('schema %s %s', oid, nspname) FROM pg_namespace
    UNION ALL SELECT format('role %s %s %s', oid, rolname, rolconfig) FROM pg_roles
    UNION ALL SELECT format('setting %s %s %s', setdatabase, setrole, setconfig) FROM pg_db_role_setting
    UNION ALL SELECT format('statistics %s %s', starelid, staattnum) FROM pg_statistic WHERE starelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
    UNION ALL SELECT format('extended statistics %s', oid) FROM pg_statistic_ext
    UNION ALL SELECT format('operator %s', oid) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace
    UNION ALL SELECT format('cast %s', oid) FROM pg_cast WHERE oid >= 16384
    UNION ALL SELECT format('comment %s %s', objoid, md5(description)) FROM pg_description WHERE objoid >= 16384
    UNION ALL SELECT format('large object %s', oid) FROM pg_largeobject_metadata
    UNION ALL SELECT format('file setting %s %s', name, setting) FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'
    UNION ALL SELECT format('migration %s %s %s', id, checksum, extract(epoch FROM finished_at)) FROM _prisma_migrations
  ) AS catalog (item)`

async function catalogOf (client: pg.Client): Promise<string> {
  return (await client.query<{ digest: string }>(CATALOG)).rows[0]?.digest ?? ''
}

/**
 * Empties a database a test gave back, as the template was: no row but the migrations' record,
 * and a session with no statement, setting, lock or counter left (PGlite is one session that
 * every connection shares). False, and nothing done, when more than rows changed.
 */
async function emptied (url: string, template: string): Promise<boolean> {
  try {
    return await withClient(url, async client => {
      if (await catalogOf(client) !== template) return false
      const tables = await client.query<{ name: string }>("SELECT format('%I', relname) AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> '_prisma_migrations'")
      await client.query(`TRUNCATE ${tables.rows.map(({ name }) => name).join(', ')} RESTART IDENTITY`)
      await client.query('SELECT pg_stat_reset()')
      await client.query('DISCARD ALL')
      return true
    }, { queryTimeoutMs: 10_000 })
  } catch {
    return false
  }
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
