// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database in ./.data/pglite.
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { startEmbeddedPostgres } from '../db/embedded.js'
import { applyMigrations, SchemaEngineError } from '../db/schema-engine.js'

const embeddedDataDir = resolve('.data', 'pglite')

/** Applies the migrations to `databaseUrl`, or to the embedded database when it is undefined. */
async function migrate (databaseUrl: string | undefined): Promise<string[]> {
  if (databaseUrl !== undefined) return await applyMigrations(databaseUrl)
  await mkdir(embeddedDataDir, { recursive: true })
  let embedded
  try {
    embedded = await startEmbeddedPostgres(embeddedDataDir)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new SchemaEngineError(`cannot open the embedded database in ${embeddedDataDir}: ${reason}`, { cause: error })
  }
  try {
    return await applyMigrations(embedded.url)
  } finally {
    await embedded.stop()
  }
}

// A deploy-pipeline entry point, like `prisma migrate deploy`: it reads DATABASE_URL itself.
const databaseUrl = process.env.DATABASE_URL === '' ? undefined : process.env.DATABASE_URL

try {
  const applied = await migrate(databaseUrl)
  if (applied.length === 0) {
    console.log('Database is up to date.')
  } else {
    console.log(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}`)
  }
} catch (error) {
  // Expected failures (unreachable server, failed migration) get their message on one line, no stack.
  console.error(error instanceof SchemaEngineError ? `db:migrate failed: ${error.message.replace(/\s*\n\s*/g, ' ')}` : error)
  process.exitCode = 1
}
