// Process entry: config → development secret → database (embedded or DATABASE_URL) → migrations → app → listen; graceful shutdown, drained first, never cutting a migration.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { openDatabase } from './db/open.js'
import { createPool, createPrisma, databaseTimeoutsOf } from './db/prisma.js'
import { applyMigrations } from './db/schema-engine.js'
import { resolveAuthSecret } from './dev-secret.js'
import { logRedaction } from './log-redaction.js'
import { createAdminAccounts, type AdminAccountDeps } from './services/admin/first-admin.js'
import { passwordServiceFor } from './services/index.js'

/** What start-up has opened, closed in reverse order: the app, then the client, then the database. */
type Closers = Array<() => Promise<void>>

/**
 * SHUTDOWN_DRAIN_SECONDS: the app keeps serving, but answers /ready 503 and closes each
 * connection after its next answer (see plugins/load-shedding.ts); then the server closes,
 * with only idle connections of clients that sent nothing meanwhile left to cut. The whole
 * time, even with no connection open: the balancer, or Kubernetes' endpoints, may still send
 * new ones until it has seen /ready fail or the pod go.
 */
async function drain (app: FastifyInstance, ms: number): Promise<void> {
  if (ms === 0 || !app.server.listening) return
  app.drain()
  await sleep(ms)
}

/** ADMIN_EMAIL: the first admin, when none is active; what happened (or why nothing did) is logged. */
async function bootstrapAdmin (config: Config, email: string, db: Pick<AdminAccountDeps, 'prisma' | 'sql'>, log: Logger): Promise<void> {
  const passwords = passwordServiceFor(config)
  // The account exists by then, and the service starts: the log says the trail misses it.
  const onAuditError = (error: unknown) => log.error({ err: error }, 'ADMIN_EMAIL: the audit entry of the new admin was not written')
  const outcome = await createAdminAccounts({ ...db, passwords, onAuditError }).bootstrap(email, config.ADMIN_PASSWORD)
    .finally(passwords.close)
  if (outcome === 'unproven') log.error(`ADMIN_EMAIL: ${email} has an account whose address is not verified and whose password is not ADMIN_PASSWORD: not promoted (verify the address, or run npm run admin:promote)`)
  else if (outcome === 'inactive') log.error(`ADMIN_EMAIL: ${email} has a deactivated account: not promoted, it stays deactivated (to bring it back as admin, with its old password: npm run admin:promote -- --email ${email} --reactivate)`)
  else if (outcome !== 'admin-exists') log.warn(`ADMIN_EMAIL: ${outcome === 'created' ? 'created' : 'promoted'} the first admin, ${email}`)
}

/** What start-up and the shutdown handler share. */
interface Lifecycle {
  /** A shutdown has begun: start-up goes no further (no migration begins, nothing listens). */
  stopping: () => boolean
  /** The shutdown drains first (SIGTERM, not SIGINT). */
  drainOnClose: () => boolean
  /** The migrations at start, while they run: a shutdown waits for them (see main). */
  migrating: (migrations: Promise<unknown>) => void
}

async function start (config: Config, log: Logger, closers: Closers, { stopping, drainOnClose, migrating }: Lifecycle): Promise<void> {
  // First: a development secret that cannot be used stops the start before the database is touched.
  const authSecret = await resolveAuthSecret(config, log)
  const database = await openDatabase(config, 'service', holder =>
    log.warn(`waiting for process ${holder?.pid ?? '(starting)'} to let go of the embedded database`))
  closers.push(database.stop)
  log.info(`using ${database.description}`)
  if (config.MIGRATE_ON_START) {
    if (stopping()) return
    const migrations = applyMigrations(database.url, { connectTimeoutSeconds: config.DATABASE_CONNECT_TIMEOUT_SECONDS })
    migrating(migrations)
    const applied = await migrations
    log.info({ applied }, applied.length > 0 ? `applied ${applied.length} migration(s)` : 'database schema is up to date')
  }
  if (stopping()) return
  await database.share?.()
  const timeouts = databaseTimeoutsOf(config)
  const pool = createPool(database, timeouts)
  closers.push(() => pool.end())
  const prisma = createPrisma(pool, timeouts)
  closers.push(() => prisma.$disconnect())
  if (config.ADMIN_EMAIL !== undefined) await bootstrapAdmin(config, config.ADMIN_EMAIL, { prisma, sql: pool }, log)
  const app = await buildApp(config, { prisma, sql: pool, authSecret, logger: log })
  closers.push(async () => {
    if (drainOnClose()) await drain(app, config.SHUTDOWN_DRAIN_SECONDS * 1000)
    await app.close()
  })
  // Asked to stop while starting: never begin to listen.
  if (stopping()) return
  await app.listen({ host: config.HOST, port: config.PORT })
  log.info(`API docs at ${config.PUBLIC_URL}/docs`)
}

/** JSON lines for log collectors; readable lines for a person at a terminal (redacted all the same). */
async function createLogger (config: Config): Promise<Logger> {
  const options = { level: config.LOG_LEVEL, ...logRedaction }
  const pretty = config.LOG_FORMAT === 'pretty' || (config.LOG_FORMAT === 'auto' && config.NODE_ENV === 'development' && process.stdout.isTTY)
  if (!pretty) return pino(options)
  const { default: prettyStream } = await import('pino-pretty')
  return pino(options, prettyStream({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }))
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
  const log = await createLogger(config)

  const closers: Closers = []
  const closeAll = async () => { for (const close of closers.splice(0).reverse()) await close() }
  let starting: Promise<void> = Promise.resolve()
  let stopping = false
  // The migrations at start while they run (undefined before and after).
  let migrations: Promise<void> | undefined
  // An orchestrator's SIGTERM drains first; Ctrl-C at a terminal (SIGINT) stops at once.
  let drainOnClose = false
  const timeoutMs = config.SHUTDOWN_TIMEOUT_SECONDS * 1000
  // SIGTERM: drain (SHUTDOWN_DRAIN_SECONDS), stop accepting connections, let requests in flight
  // finish (app.close) and the mail delivery under way, close the database; exit 0, or 1 when
  // SHUTDOWN_TIMEOUT_SECONDS runs out first, or when start-up failed meanwhile. A second signal
  // exits 1 at once (close-with-grace).
  // The timeout is armed here, not by close-with-grace (delay: null): its timer would run from
  // the signal, and cut a migration under way.
  const grace = closeWithGrace({ delay: null, logger: log }, async ({ signal, err }) => {
    stopping = true
    drainOnClose = signal === 'SIGTERM'
    if (err !== undefined) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down')
    const armTimeout = () => setTimeout(() => {
      log.error(`killed by timeout (${timeoutMs}ms)`)
      process.exit(1)
    }, timeoutMs)
    // A signal never cuts a migration under way: killed, it would leave its record failed, and
    // every later start refused (docs/database.md, "A failed migration"). It is waited for with
    // no timeout of this process's: the database's own timeouts bound it (docs/operations.md,
    // "Graceful shutdown"); the shutdown's timeout starts once it is done. An error is no
    // operator's choice and may be the migration's own (its connection gone, a migration that
    // never settles): the timeout runs from it, as before.
    let timer = err === undefined ? undefined : armTimeout()
    const migration = migrations
    if (migration !== undefined && timer === undefined) {
      log.warn('waiting for the migration under way to finish before stopping (a second signal stops at once, and leaves it failed)')
      await migration
    }
    timer ??= armTimeout()
    const started = await starting.then(() => true, () => false)
    await closeAll()
    clearTimeout(timer)
    log.info('stopped')
    // Its fatal line is logged by main.
    if (!started) process.exit(1)
  })

  const migrating = (running: Promise<unknown>) => {
    const settled = running.then(() => {}, () => {}).finally(() => { if (migrations === settled) migrations = undefined })
    migrations = settled
  }
  starting = start(config, log, closers, { stopping: () => stopping, drainOnClose: () => drainOnClose, migrating })
  try {
    await starting
  } catch (error) {
    // Expected failures (database unreachable, a migration failing) get one line, not a crash.
    log.fatal({ err: error }, `start-up failed: ${error instanceof Error ? error.message : String(error)}`)
    if (stopping) return // the shutdown handler closes what was opened, and exits 1
    grace.uninstall()
    await closeAll().catch(() => {})
    process.exit(1)
  }
}

await main()
