// Process entry: config → database (embedded or DATABASE_URL) → migrations → app → listen; graceful shutdown.
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp, redactedPaths } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { startEmbeddedPostgres } from './db/embedded.js'
import { createPrisma } from './db/prisma.js'
import { applyMigrations } from './db/schema-engine.js'
import { resolveAuthSecret } from './dev-secret.js'

interface Database {
  url: string
  poolSize: number
  stop: () => Promise<void>
}

async function openDatabase (config: Config): Promise<Database> {
  if (config.DATABASE_URL !== undefined) {
    return { url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE, stop: async () => {} }
  }
  const embedded = await startEmbeddedPostgres(join(config.DATA_DIR, 'pglite'))
  return { url: embedded.url, poolSize: 1, stop: embedded.stop }
}

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
  if (config.DATABASE_URL === undefined) log.info(`using the embedded database in ${join(config.DATA_DIR, 'pglite')}`)
  if (config.MIGRATE_ON_START) {
    const applied = await applyMigrations(database.url)
    log.info({ applied }, applied.length > 0 ? `applied ${applied.length} migration(s)` : 'database schema is up to date')
  }
  const prisma = createPrisma(database)
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
