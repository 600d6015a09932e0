// Process entry: config → database (embedded or DATABASE_URL) → migrations → app → listen; graceful shutdown.
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp, redactedPaths } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { openDatabase } from './db/open.js'
import { createPrisma, databaseTimeoutsOf } from './db/prisma.js'
import { applyMigrations } from './db/schema-engine.js'
import { resolveAuthSecret } from './dev-secret.js'
import { createAdminAccounts } from './services/admin-accounts.js'
import { passwordServiceFor } from './services/index.js'

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(error.message)
    process.exit(1)
  }
  const log = pino({ level: config.LOG_LEVEL, redact: { paths: redactedPaths, censor: '[redacted]' } })

  const database = await openDatabase(config)
  log.info(`using ${database.description}`)
  if (config.MIGRATE_ON_START) {
    const applied = await applyMigrations(database.url)
    log.info({ applied }, applied.length > 0 ? `applied ${applied.length} migration(s)` : 'database schema is up to date')
  }
  const prisma = createPrisma(database, databaseTimeoutsOf(config))
  if (config.ADMIN_EMAIL !== undefined) {
    const outcome = await createAdminAccounts({ prisma, passwords: passwordServiceFor(config) }).bootstrap(config.ADMIN_EMAIL, config.ADMIN_PASSWORD)
    if (outcome !== 'admin-exists') log.warn(`ADMIN_EMAIL: ${outcome === 'created' ? 'created' : 'promoted'} the first admin, ${config.ADMIN_EMAIL}`)
  }
  const app = await buildApp(config, { prisma, authSecret: await resolveAuthSecret(config, log), logger: log })

  closeWithGrace({ delay: 10_000, logger: log }, async ({ signal, err }) => {
    if (err !== undefined) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down')
    await app.close()
    await prisma.$disconnect()
    await database.stop()
  })

  await app.listen({ host: config.HOST, port: config.PORT })
  log.info(`API docs at ${config.PUBLIC_URL}/docs`)
}

await main()
