// `npm run db:diff [name]` (or `-- --create <name>`): prints the SQL from the migrations to prisma/schema.prisma, or saves it as a migration.
import { mkdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { diffMigrationsToSchema, migrationLock, SchemaEngineError } from '../db/schema-engine.js'

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url))

/** `20250102030405`: UTC, the prefix `prisma migrate dev` gives migration directories. */
function timestamp (date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14)
}

/** Writes `sql` as the next migration and the lock file, as `prisma migrate dev --create-only` does; returns its path. */
async function createMigration (name: string, sql: string): Promise<string> {
  const slug = name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 200)
  if (slug === '') throw new SchemaEngineError(`invalid migration name: ${JSON.stringify(name)}`)
  const directory = join(migrationsDir, `${timestamp(new Date())}_${slug}`)
  // Fails if it exists rather than overwrite a migration created in the same second.
  await mkdir(migrationsDir, { recursive: true })
  await mkdir(directory)
  const file = join(directory, 'migration.sql')
  await writeFile(file, sql)
  await writeFile(join(migrationsDir, migrationLock.fileName), migrationLock.content)
  return file
}

try {
  // A bare name is accepted because `npm run db:diff --create x` (without `--`) hands the script only `x`.
  const { values, positionals } = parseArgs({ options: { create: { type: 'string' } }, allowPositionals: true })
  if (positionals.length > (values.create === undefined ? 1 : 0)) throw new SchemaEngineError('expected at most one migration name')
  const name = values.create ?? positionals[0]
  const sql = await diffMigrationsToSchema({ migrationsDir })
  if (sql === '') {
    console.log('No schema changes.')
  } else if (name === undefined) {
    process.stdout.write(sql.endsWith('\n') ? sql : `${sql}\n`)
  } else {
    const file = await createMigration(name, sql)
    console.log(`Created ${relative(process.cwd(), file)}`)
  }
} catch (error) {
  const expected = error instanceof SchemaEngineError || String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')
  console.error(expected ? `db:diff failed: ${(error as Error).message}` : error)
  process.exitCode = 1
}
