// Migrations vs schema drift, and applying migrations (idempotent, concurrent) to a fresh database.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { applyMigrations, diffMigrationsToSchema, SchemaEngineError } from '../../src/db/schema-engine.js'
import { createEmptyDatabase, withClient } from '../helpers/database.js'
import { startSilentServer } from '../helpers/net.js'

const serverUrl = process.env.TEST_DATABASE_URL === '' ? undefined : process.env.TEST_DATABASE_URL
const prismaDir = fileURLToPath(new URL('../../prisma/', import.meta.url))
const migrationNames = (await readdir(join(prismaDir, 'migrations'), { withFileTypes: true }))
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort()

async function freshDatabase (t: { teardown: (fn: () => Promise<unknown>) => void }): Promise<string> {
  const database = await createEmptyDatabase()
  t.teardown(database.drop)
  return database.url
}

interface MigrationRow { migration_name: string, finished_at: Date | null, rolled_back_at: Date | null }

async function recordedMigrations (url: string): Promise<MigrationRow[]> {
  return await withClient(url, async (client) => (await client.query<MigrationRow>(
    'SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY migration_name'
  )).rows)
}

t.test('there are migrations', async (t) => {
  t.ok(migrationNames.length > 0, 'prisma/migrations holds at least one migration')
})

t.test('the migrations produce exactly prisma/schema.prisma (no drift)', async (t) => {
  const sql = await diffMigrationsToSchema()
  t.equal(sql, '', `run \`npm run db:diff\` to see the difference:\n${sql}`)
})

t.test('a schema change shows up in the diff', async (t) => {
  const schema = await readFile(join(prismaDir, 'schema.prisma'), 'utf8')
  const dir = t.testdir()
  const schemaPath = join(dir, 'schema.prisma')
  await writeFile(schemaPath, `${schema}\nmodel DriftProbe {\n  id Int @id\n}\n`.replace(
    /(\n {2}revokedReason +String\?)/, '$1\n  driftColumn String?'
  ))
  const sql = await diffMigrationsToSchema({ schemaPath })
  t.match(sql, /CREATE TABLE "DriftProbe"/)
  t.match(sql, /ALTER TABLE "Session" ADD COLUMN {5}"driftColumn" TEXT/)
})

t.test('applying to a fresh database, then again', async (t) => {
  const url = await freshDatabase(t)
  t.same(await applyMigrations(url, { connectTimeoutSeconds: 30 }), migrationNames, 'applies every migration, in order')

  const tables = await withClient(url, async (client) => (await client.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
  )).rows.map((row) => row.table_name))
  const models = [...(await readFile(join(prismaDir, 'schema.prisma'), 'utf8')).matchAll(/^model (\w+) \{/gm)].map((match) => match[1])
  t.same(tables, [...models, '_prisma_migrations'].sort(), 'a table for every model of schema.prisma')

  const rows = await recordedMigrations(url)
  t.same(rows.map((row) => row.migration_name), migrationNames)
  t.ok(rows.every((row) => row.finished_at !== null && row.rolled_back_at === null), 'all finished, none rolled back')

  t.same(await applyMigrations(url, { connectTimeoutSeconds: 30 }), [], 'applies nothing the second time')
  t.equal((await recordedMigrations(url)).length, migrationNames.length)
})

t.test('two concurrent runs on a fresh database', {
  skip: serverUrl === undefined && 'needs TEST_DATABASE_URL: the embedded server refuses a second connection, so runs cannot overlap'
}, async (t) => {
  const url = await freshDatabase(t)
  const runs = await Promise.allSettled([applyMigrations(url, { connectTimeoutSeconds: 30 }), applyMigrations(url, { connectTimeoutSeconds: 30 })])
  const applied = runs.map((run) => run.status === 'fulfilled' ? run.value : run.reason as Error)
  t.ok(applied.every(Array.isArray), 'both runs succeed')
  t.same(applied.flat().sort(), migrationNames, 'each migration is applied by exactly one run')
  t.ok(applied.some((names) => Array.isArray(names) && names.length === 0), 'the other run finds nothing left to apply')
  t.same((await recordedMigrations(url)).map((row) => row.migration_name), migrationNames, 'each recorded once')
})

// Regression: the migrations' connection had no timeout, so a start-up, db:migrate or the admin
// tool waited for ever on a server that accepted the connection and never answered.
t.test('a server that accepts the connection and never answers fails the run after the connect timeout', async (t) => {
  const silent = await startSilentServer()
  t.teardown(silent.close)
  const started = Date.now()
  const failure = await applyMigrations(`postgresql://postgres@127.0.0.1:${silent.port}/none`, { connectTimeoutSeconds: 1 }).then(() => undefined, (error: Error) => error)
  t.ok(failure instanceof SchemaEngineError, `fails as the database's error (${String(failure)})`)
  t.match(failure?.message, /^cannot connect to the database: .*timeout/, 'saying it timed out')
  t.ok(Date.now() - started < 15_000, `in seconds, not for ever (${Date.now() - started} ms)`)
})
