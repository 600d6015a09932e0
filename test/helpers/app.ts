// Builds the app against a database of the test's own, with cheap hashing and an injectable clock.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createPool, createPrisma, databaseTimeoutsOf, type PrismaClient } from '../../src/db/prisma.js'
import { createArgon2Threads, type Argon2Threads } from '../../src/services/passwords/passwords.js'
import { createTestDatabase, type TestDatabase } from './database.js'

export interface TestClock {
  now: () => Date
  /** Moves the clock by `seconds` (negative goes back). */
  advance: (seconds: number) => void
}

export function createClock (start = Date.now()): TestClock {
  let offsetMs = 0
  return {
    now: () => new Date(start + offsetMs + (Date.now() - start)),
    advance: seconds => { offsetMs += seconds * 1000 }
  }
}

export const TEST_SECRET = 'test-root-key-0123456789-abcdefghijklmnopqrstuvwxyz'

/** Limits out of the way of tests about something else; the abuse tests set their own. */
export const generousLimits: Record<string, string> = {
  RATE_LIMIT_DEFAULT: '100000/60',
  RATE_LIMIT_LOGIN_IP: '100000/60',
  RATE_LIMIT_LOGIN_ACCOUNT: '100000/60',
  RATE_LIMIT_REGISTER: '100000/60',
  RATE_LIMIT_REFRESH: '100000/60',
  RATE_LIMIT_VERIFY: '100000/60',
  RATE_LIMIT_MAIL: '100000/60',
  RATE_LIMIT_MAIL_ACCOUNT: '100000/60',
  RATE_LIMIT_DOCS: '100000/60',
  LOGIN_BACKOFF_AFTER_FAILURES: '50',
  LOGIN_LOCKOUT_AFTER_FAILURES: '50'
}

/**
 * The configuration tests run with: cheap argon2 (the password tests use real parameters),
 * generous limits, and no load shedding — a test firing `inject` calls in a loop saturates its
 * event loop on purpose, which must not turn into 503s (test/plugins/load-shedding.test.ts turns it on).
 */
export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_TIME_COST: '1',
    // Hashing at normal priority: the timing tests must not depend on what the other test
    // files keep the machine busy with (test/services/passwords/passwords.test.ts checks the default).
    ARGON2_NICE: '0',
    COOKIE_SECURE: 'true',
    ...generousLimits,
    LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS: '0',
    LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: '0',
    ...env
  })
}

let argon2Threads: Argon2Threads | undefined

/**
 * One hashing thread for all the apps of a test process, at normal priority (as in
 * testConfig): starting a pool per app, each thread loading the TypeScript loader, cost more
 * than the hashing. Idle, it does not keep the process alive.
 */
function sharedArgon2Threads (): Argon2Threads {
  argon2Threads ??= createArgon2Threads({ concurrency: 1, nice: 0 })
  return argon2Threads
}

export interface TestApp {
  app: FastifyInstance
  prisma: PrismaClient
  /** The pool under both Prisma and the hand-written statements. */
  pool: ReturnType<typeof createPool>
  config: Config
  clock: TestClock
  database: TestDatabase
}

interface TapTest { teardown: (fn: () => unknown) => void }

export interface BuildOptions {
  env?: Record<string, string>
  database?: TestDatabase
  /** A pino logger of the test's own, to read what the app logs. */
  logger?: FastifyBaseLogger
  /** An admin console build of the test's own (scripts/build-console.ts). */
  consoleRoot?: string
}

/** The app's life is tied to the test: it closes, with its database, when the test ends. */
export async function buildTestApp (t: TapTest, options: BuildOptions = {}): Promise<TestApp> {
  const ownDatabase = options.database === undefined ? await createTestDatabase() : null
  const database = options.database ?? ownDatabase as TestDatabase
  const config = testConfig(options.env)
  const timeouts = databaseTimeoutsOf(config)
  const pool = createPool(database, timeouts)
  const prisma = createPrisma(pool, timeouts)
  const clock = createClock()
  const app = await buildApp(config, { prisma, sql: pool, authSecret: config.AUTH_SECRET ?? TEST_SECRET, now: clock.now, argon2Threads: sharedArgon2Threads(), ...(options.logger === undefined ? {} : { logger: options.logger }), ...(options.consoleRoot === undefined ? {} : { consoleRoot: options.consoleRoot }) })
  t.teardown(async () => {
    await app.close()
    await prisma.$disconnect()
    await pool.end()
    await ownDatabase?.drop()
  })
  await app.ready()
  return { app, prisma, pool, config, clock, database }
}
