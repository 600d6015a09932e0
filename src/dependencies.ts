// What the app is made of, built from the config before anything is registered: signing keys, metrics, the mail sender, every service.
import type { FastifyBaseLogger } from 'fastify'
import { ACCESS_TOKEN_TTL_MAX_SECONDS, type Config } from './config.js'
import { mailSettingsOf, rateLimitsOf } from './config-derived.js'
import { databaseNeedsOperator, isDatabaseUnavailable, reasonOf } from './db/errors.js'
import type { PrismaClient } from './db/prisma.js'
import type { Sql } from './db/sql.js'
import { createMetrics } from './plugins/metrics.js'
import { createServices } from './services/index.js'
import { createMailSender } from './services/mail/sender.js'
import type { Argon2Threads } from './services/passwords/passwords.js'
import { createKeyRing, loadSigningKeys } from './services/tokens/signing-keys.js'
import type { SignJwt } from './services/tokens/access-tokens.js'
import { deriveKey } from './services/tokens/derived-keys.js'

export interface AppDeps {
  prisma: PrismaClient
  /** The pool under `prisma`: the hot paths query it directly. */
  sql: Sql
  /** The root secret (AUTH_SECRET, or the development secret kept under DATA_DIR). */
  authSecret: string
  /** The clock; tests inject one to reach expiry without waiting. */
  now?: () => Date
  /** The process's pino logger; without one, the app makes its own from the config. */
  logger?: FastifyBaseLogger
  /**
   * Password-hashing threads that outlive the app: the tests' apps share one per process
   * instead of starting (and loading) their own. Without them, the app has its own.
   */
  argon2Threads?: Argon2Threads
  /** The admin console's build; dist/console by default. */
  consoleRoot?: string
}

/**
 * Everything the plugins and routes are given. `signJwt` signs with the access-token layer,
 * which exists once registered: it is called only when a request issues a token.
 */
export async function buildDependencies (config: Config, deps: AppDeps, log: FastifyBaseLogger, signJwt: SignJwt) {
  const now = deps.now ?? (() => new Date())
  const signingKeys = await loadSigningKeys(config.JWT_ALGORITHM, config.JWT_KEYS_DIR, deriveKey(deps.authSecret, 'access-token'))
  for (const warning of signingKeys.warnings) log.warn(warning)
  const ring = createKeyRing({
    keys: signingKeys.keys,
    algorithm: config.JWT_ALGORITHM,
    publishSeconds: config.JWT_KEY_PUBLISH_SECONDS,
    retireAfterSeconds: ACCESS_TOKEN_TTL_MAX_SECONDS + config.JWT_CLOCK_TOLERANCE_SECONDS,
    now
  })
  const mail = mailSettingsOf(config)
  const mailLog = log.child({ component: 'mail' })
  const counters = createMetrics()
  const services = createServices(config, {
    metrics: { ...counters.auth, ...counters.mail },
    prisma: deps.prisma,
    sql: deps.sql,
    signJwt,
    refreshKey: deriveKey(deps.authSecret, 'refresh-token'),
    oneTimeTokenKey: deriveKey(deps.authSecret, 'one-time-token'),
    identifierKey: deriveKey(deps.authSecret, 'identifier'),
    totpKeys: {
      current: deriveKey(deps.authSecret, 'totp-secret'),
      ...(config.AUTH_SECRET_PREVIOUS === undefined ? {} : { previous: deriveKey(config.AUTH_SECRET_PREVIOUS, 'totp-secret') })
    },
    now,
    reportError: (err, context) => {
      // An outage passes by itself, and each request during it already warns "database unavailable"
      // (an error, when it takes an operator).
      if (isDatabaseUnavailable(err)) log[databaseNeedsOperator(err) ? 'error' : 'warn']({ reason: reasonOf(err) }, `${context}: database unavailable`)
      else log.error({ err }, context)
    },
    mailSender: createMailSender({ smtpUrl: config.SMTP_URL, from: mail.from, log: mailLog }),
    mailLog,
    mail,
    ...(deps.argon2Threads === undefined ? {} : { argon2Threads: deps.argon2Threads })
  })
  return {
    now,
    ring,
    counters,
    services,
    limits: rateLimitsOf(config),
    passwordPolicy: { minLength: config.PASSWORD_MIN_LENGTH, maxLength: config.PASSWORD_MAX_LENGTH },
    // Probes (health checks, scrapes) every few seconds would drown the log at info; debug shows them.
    probeLogLevel: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL
  }
}
