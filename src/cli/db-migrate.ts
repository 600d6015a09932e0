// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database under DATA_DIR.
import { ConfigError, loadDatabaseConfig } from '../config.js'
import { DatabaseBusyError, openDatabase } from '../db/open.js'
import { applyMigrations, SchemaEngineError } from '../db/schema-engine.js'

/** Applies the migrations to the configured database: the one the service opens with the same environment. */
async function migrate (): Promise<string[]> {
  // Only the database settings: a deploy pipeline gives this step no secrets.
  const config = loadDatabaseConfig()
  const database = await openDatabase(config, 'tool', holder => {
    console.error(`db:migrate: waiting for process ${holder?.pid ?? '(starting)'} to let go of the embedded database…`)
  })
  try {
    return await applyMigrations(database.url, { connectTimeoutSeconds: config.DATABASE_CONNECT_TIMEOUT_SECONDS })
  } finally {
    await database.stop()
  }
}

try {
  const applied = await migrate()
  if (applied.length === 0) {
    console.log('Database is up to date.')
  } else {
    console.log(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}`)
  }
} catch (error) {
  // Expected failures (bad settings, unreachable server, busy embedded database, failed migration) get one line, no stack.
  const expected = error instanceof SchemaEngineError || error instanceof ConfigError || error instanceof DatabaseBusyError
  console.error(expected ? `db:migrate failed: ${error.message.replace(/\s*\n\s*/g, ' ')}` : error)
  process.exitCode = 1
}
