// The only reader of process.env: one TypeBox schema, validated at start-up, gives the Config type.
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { lifetimeBounds } from './services/admin/lifetime-bounds.js'
import { consistencyProblems, credentialUrlProblems, originOf, productionProblems } from './config-checks.js'
import { WebauthnSettingsSchema, webauthnProblems } from './config-webauthn.js'

const Seconds = (defaultValue: number, minimum: number, maximum: number, description: string) =>
  Type.Integer({ default: defaultValue, minimum, maximum, description })

const Flag = (defaultValue: boolean, description: string) =>
  Type.Boolean({ default: defaultValue, description })

// A rate limit as "requests/seconds": at most that many requests in a window of that many seconds.
const Rate = (defaultValue: string, description: string) =>
  Type.String({ default: defaultValue, pattern: '^[1-9][0-9]{0,6}/[1-9][0-9]{0,6}$', description: `${description}, as requests/seconds` })

// "address" or "Display Name <address>", on one line (no header injection).
const MAILBOX = '^(?:[^<>\\r\\n]*<[^\\s<>@]+@[^\\s<>@]+>|[^\\s<>@]+@[^\\s<>@]+)$'

/** The longest access token life, here and in the admin settings: how long a retired signing key keeps verifying. */
export const ACCESS_TOKEN_TTL_MAX_SECONDS = lifetimeBounds.accessTokenTtlSeconds.maximum

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
    description: 'production refuses development secrets and weak settings'
  }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address to listen on (0.0.0.0 in a container)' }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: 'info' }),
  LOG_FORMAT: Type.Union([Type.Literal('auto'), Type.Literal('json'), Type.Literal('pretty')], {
    default: 'auto',
    description: 'json: one JSON object per line, for log collectors; pretty: readable lines for a person; auto: pretty in development on a terminal, json otherwise'
  }),
  // No default here: loadConfig derives it from HOST and PORT.
  // Only the scheme here: the consistency checks name the right spelling of a path, a slash, a case.
  PUBLIC_URL: Type.String({ pattern: '^[Hh][Tt][Tt][Pp][Ss]?://[^/]', description: "the service's own origin, no path; default http://localhost:PORT; required, and https, in production" }),

  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL URL; unset: embedded PGlite under DATA_DIR' })),
  DATABASE_POOL_SIZE: Type.Integer({ default: 10, minimum: 1, maximum: 200 }),
  DATABASE_CONNECT_TIMEOUT_SECONDS: Seconds(5, 1, 60, 'give up opening a database connection, or waiting for a free one, after this long'),
  DATABASE_QUERY_TIMEOUT_SECONDS: Seconds(10, 1, 300, 'a statement running this long is cancelled by the server, and a transaction not ended is rolled back: a hung database gets a 503 that wrote nothing, not a hung request'),
  DATA_DIR: Type.String({ default: '.data', minLength: 1, description: 'embedded database and development secret' }),
  MIGRATE_ON_START: Flag(true, 'apply pending migrations at start'),

  AUTH_SECRET: Type.Optional(Type.String({ minLength: 32, maxLength: 1024, description: 'root secret (32 to 1024 characters): signs access tokens (HS256), derives refresh and mailed tokens, seals TOTP secrets' })),
  AUTH_SECRET_PREVIOUS: Type.Optional(Type.String({ minLength: 32, description: 'the root secret AUTH_SECRET replaces: TOTP secrets sealed under it still open and are sealed again under AUTH_SECRET; nothing signed with it is accepted' })),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('EdDSA'), Type.Literal('ES256')], {
    default: 'HS256',
    description: 'access token signature: HS256 (key derived from AUTH_SECRET) or EdDSA/ES256 (keys in JWT_KEYS_DIR, published at /.well-known/jwks.json)'
  }),
  JWT_KEYS_DIR: Type.Optional(Type.String({ minLength: 1, description: 'directory of <kid>.key.pem / <kid>.pub.pem files (npm run keys:generate); required for EdDSA and ES256' })),
  JWT_KEY_PUBLISH_SECONDS: Seconds(3600, 0, 604_800, 'a new key is published this long before it starts signing'),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1, description: 'iss claim; default PUBLIC_URL' })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1, description: 'aud claim; default PUBLIC_URL' })),
  JWT_CLOCK_TOLERANCE_SECONDS: Seconds(0, 0, 30, 'leeway on exp/nbf'),
  ACCESS_TOKEN_TTL_SECONDS: Seconds(900, 5, ACCESS_TOKEN_TTL_MAX_SECONDS, 'access token lifetime'),
  REFRESH_TOKEN_IDLE_TTL_SECONDS: Seconds(604_800, 60, 7_776_000, 'a session dies after this long unused'),
  SESSION_ABSOLUTE_TTL_SECONDS: Seconds(2_592_000, 60, 31_536_000, 'a session dies this long after login, whatever happens'),
  REFRESH_REUSE_GRACE_SECONDS: Seconds(10, 0, 60, 'the previous refresh token still yields the same successor this long'),
  MAX_SESSIONS_PER_USER: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  SESSION_RETENTION_DAYS: Type.Integer({ default: 30, minimum: 1, maximum: 3650, description: 'a session that ended (signed out, revoked or expired), or a mailed link used or expired, this many days ago is deleted by each instance\'s hourly retention pass (a session also at its user\'s next login)' }),
  AUDIT_RETENTION_DAYS: Type.Integer({ default: 365, minimum: 0, maximum: 36_500, description: 'an audit entry is deleted this many days after it was written (each instance looks at start and every hour); 0 keeps every entry' }),
  UNVERIFIED_ACCOUNT_RETENTION_DAYS: Type.Integer({ default: 0, minimum: 0, maximum: 3650, description: 'an account whose address was never proven is deleted (with its address and name free again) once it was made, its sessions last used and its last verification or email-change link issued this many days ago (each instance looks at start and every hour); never an admin or a deactivated account; 0 keeps them all, else at most SESSION_RETENTION_DAYS and longer than EMAIL_VERIFICATION_TTL_SECONDS. Meant for REQUIRE_EMAIL_VERIFICATION=true' }),
  SETTINGS_REFRESH_SECONDS: Seconds(5, 1, 300, 'how soon a runtime settings change made on another instance applies here'),

  ADMIN_EMAIL: Type.Optional(Type.String({ minLength: 3, maxLength: 254, description: 'bootstrap: made (or promoted to) admin at start when no admin exists' })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, description: 'bootstrap: the password of a newly created ADMIN_EMAIL account' })),

  COOKIE_SECURE: Flag(true, 'Secure cookies with __Host- names (plain names when false); false only for local http'),
  COOKIE_SAMESITE: Type.Union([Type.Literal('lax'), Type.Literal('strict'), Type.Literal('none')], { default: 'lax' }),
  TRUST_PROXY: Type.String({ default: '', description: 'comma-separated proxy addresses/CIDRs (or loopback, linklocal, uniquelocal) whose X-Forwarded-* headers are believed; never every address' }),
  CORS_ORIGINS: Type.String({ default: '', description: 'comma-separated origins allowed to call with credentials (a user\'s own routes: the admin API takes cookies from PUBLIC_URL\'s pages only)' }),

  CONSOLE_ENABLED: Flag(true, 'serve the admin console (built by npm run build) under CONSOLE_PATH'),
  CONSOLE_PATH: Type.String({ default: '/console', pattern: '^(/[A-Za-z0-9._~-]+)+$', description: 'where the admin console is served, like /console; no trailing slash' }),

  DOCS_ENABLED: Flag(true, 'serve the interactive API docs at /docs and the OpenAPI document at /docs/json and /docs/yaml'),

  PASSWORD_MIN_LENGTH: Type.Integer({ default: 8, minimum: 8, maximum: 64 }),
  PASSWORD_MAX_LENGTH: Type.Integer({ default: 256, minimum: 64, maximum: 1024 }),
  ARGON2_MEMORY_KIB: Type.Integer({ default: 19_456, minimum: 1024, maximum: 4_194_304 }),
  ARGON2_TIME_COST: Type.Integer({ default: 2, minimum: 1, maximum: 20 }),
  ARGON2_PARALLELISM: Type.Integer({ default: 1, minimum: 1, maximum: 16 }),
  ARGON2_CONCURRENCY: Type.Integer({ default: 0, minimum: 0, maximum: 256, description: 'password hashes computed at once, the rest wait their turn (0: one per CPU core)' }),
  ARGON2_MAX_WAITING: Type.Integer({ default: 256, minimum: 1, maximum: 100_000, description: 'password hashes that may wait for a thread; past them a request that needs one is refused with 503 and Retry-After' }),
  ARGON2_NICE: Type.Integer({ default: 19, minimum: 0, maximum: 19, description: 'CPU priority of the hashing threads, as a nice value (Linux): 19 yields to everything else, 0 competes at normal priority' }),

  BODY_LIMIT_BYTES: Type.Integer({ default: 32_768, minimum: 1024, maximum: 1_048_576 }),
  HEADERS_TIMEOUT_SECONDS: Seconds(10, 1, 60, 'a request whose headers have not all arrived this long after its first byte is answered 408 REQUEST_TIMEOUT and its connection closed; at most REQUEST_TIMEOUT_SECONDS'),
  MAX_CONNECTIONS: Type.Optional(Type.Integer({ minimum: 16, maximum: 1_000_000, description: 'connections the API\'s port holds at once; past them a new one is closed unanswered. Default: the open-file limit less 256 (for the database, Redis, mail and logs; 512 with the embedded database), at most 16384' })),
  REQUEST_TIMEOUT_SECONDS: Seconds(30, 1, 300, 'a request whose headers and body have not all arrived this long after its first byte is answered 408 REQUEST_TIMEOUT and its connection closed'),
  LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0, maximum: 60_000, description: 'answer 503 while the mean event loop delay exceeds this (0 disables)' }),
  // Off by default: with the embedded database (queries on the event loop) or a shared CPU, one busy second passes 0.98.
  LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ default: 0, minimum: 0, maximum: 1, description: 'answer 503 while the event loop is busy more than this share of the time (0 disables)' }),

  SHUTDOWN_TIMEOUT_SECONDS: Seconds(10, 1, 600, 'after SIGTERM, requests in flight get this long to finish before the process exits anyway (a migration under way at start is waited for first)'),
  SHUTDOWN_DRAIN_SECONDS: Seconds(5, 0, 300, 'after SIGTERM, requests are served this long with /ready answering 503 and each connection closed after its answer, before the server closes; part of SHUTDOWN_TIMEOUT_SECONDS, and less than it'),

  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, maxLength: 1024, description: '16 to 1024 characters; GET /metrics answers callers sending Authorization: Bearer <token>' })),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'serve GET /metrics on this port of HOST instead of the API port' })),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s]+$', description: 'redis[s]://[user:pass@]host[:port][/db]: rate-limit counters shared by every instance; unset: in memory, per instance' })),
  REDIS_KEY_PREFIX: Type.String({ default: 'auth:', pattern: '^[A-Za-z0-9:._-]{0,64}$', description: 'prefix of every Redis key this service writes' }),
  RATE_LIMIT_DEFAULT: Rate('600/60', 'per client ip, on every route without a limit of its own'),
  RATE_LIMIT_LOGIN_IP: Rate('30/300', 'login attempts per client ip; also each route that checks a code, a passkey or the current password (passkey registration and new recovery codes too), and the start of a TOTP setup, counted apart'),
  RATE_LIMIT_LOGIN_ACCOUNT: Rate('10/300', 'login attempts per account identifier from one client ip, whether or not the account exists'),
  RATE_LIMIT_REGISTER: Rate('10/300', 'per client ip, one budget for registrations, username and email changes (their 409s tell that an account exists); username changes per user too'),
  RATE_LIMIT_REFRESH: Rate('150/300', 'refreshes per client ip'),
  RATE_LIMIT_VERIFY: Rate('600/60', 'POST /auth/verify per client ip'),
  RATE_LIMIT_MAIL: Rate('10/900', 'per client ip on each of password forgot/reset, email verify/resend and email changes'),
  RATE_LIMIT_DOCS: Rate('60/60', 'per client ip, one budget for everything under /docs (the page, its assets, the OpenAPI document), on top of RATE_LIMIT_DEFAULT'),
  RATE_LIMIT_MAIL_ACCOUNT: Rate('3/900', 'mails per account: password reset mails per email address; verification mails and email changes per user, one budget; admin-sent reset mails per user; links to an address not yet proven (registration, email change, resend) per address, one budget'),
  SIGN_IN_NOTICES: Flag(true, 'mail the owner of a sign-in from a device or browser the account has not used within SESSION_RETENTION_DAYS, or after LOGIN_BACKOFF_AFTER_FAILURES failed attempts (at most one mail per account in 15 minutes; docs/security.md, "Sign-in notices")'),
  LOGIN_BACKOFF_AFTER_FAILURES: Type.Integer({ default: 5, minimum: 1, maximum: 50, description: 'consecutive failed logins per identifier before each further attempt must wait' }),
  LOGIN_BACKOFF_BASE_SECONDS: Seconds(30, 1, 3600, 'the first wait; it doubles with every further failure'),
  LOGIN_BACKOFF_MAX_SECONDS: Seconds(900, 1, 86_400, 'the longest wait between attempts before the lockout'),
  LOGIN_LOCKOUT_AFTER_FAILURES: Type.Integer({ default: 50, minimum: 1, maximum: 50, description: 'consecutive failed logins per identifier that lock it (at most 50: an account has two identifiers, NIST SP 800-63B allows 100 failures)' }),
  LOGIN_LOCKOUT_SECONDS: Seconds(86_400, 60, 604_800, 'how long a locked identifier stays locked; a password reset lifts it at once, but for wrong codes at a login\'s second step'),

  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://[^\\s]+$', description: 'SMTP server as smtp[s]://[user:pass@]host[:port]; unset: mails are written to the log (development only)' })),
  MAIL_FROM: Type.Optional(Type.String({ maxLength: 320, pattern: MAILBOX, description: 'sender, "address" or "Name <address>"; default no-reply@ the PUBLIC_URL host' })),
  PASSWORD_RESET_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'reset link template with {token}; default PUBLIC_URL/reset-password#token={token}' })),
  EMAIL_VERIFICATION_URL: Type.Optional(Type.String({ pattern: '^https?://', description: 'verification link template with {token}; default PUBLIC_URL/verify-email#token={token}' })),
  PASSWORD_RESET_TTL_SECONDS: Seconds(1800, 60, 86_400, 'a password reset link works this long'),
  EMAIL_VERIFICATION_TTL_SECONDS: Seconds(86_400, 60, 604_800, 'an email verification link works this long'),
  MAIL_MAX_ATTEMPTS: Type.Integer({ default: 8, minimum: 1, maximum: 50, description: 'attempts to send a mail before it is given up (logged at error, counted in auth_mail_deliveries_total)' }),
  MAIL_RETRY_BASE_SECONDS: Seconds(30, 1, 3600, 'the wait after a failed attempt to send a mail; it doubles with each further failure, up to an hour'),
  MAIL_POLL_SECONDS: Seconds(5, 1, 300, 'how often each instance looks for mail due (retries, and mail queued by other instances)'),
  REQUIRE_EMAIL_VERIFICATION: Flag(false, 'refuse login (403 EMAIL_NOT_VERIFIED, only after a correct password) and refresh until the email address is verified'),

  // No default here: loadConfig derives it from NODE_ENV.
  REQUIRE_MFA_FOR_ADMINS: Type.Boolean({ description: 'the admin API answers 403 MFA_ENROLMENT_REQUIRED to an admin whose session has not proven a second factor; default true when NODE_ENV=production, else false' }),
  REAUTH_MAX_AGE_SECONDS: Seconds(600, 30, 86_400, 'sensitive changes (password, email, factors, deletion, logout-all) need a password or code proven on the session this recently'),
  MFA_ISSUER: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[^:]+$', description: 'the name authenticator apps show for the account; default the PUBLIC_URL host' })),
  ...WebauthnSettingsSchema
}, { additionalProperties: true })

export type Config = Static<typeof ConfigSchema>

// Secrets, and URLs that may carry a password: a bad value is named, never shown.
const neverEchoed = new Set(['AUTH_SECRET', 'AUTH_SECRET_PREVIOUS', 'ADMIN_PASSWORD', 'DATABASE_URL', 'SMTP_URL', 'REDIS_URL', 'METRICS_TOKEN'])

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

/**
 * Reads and validates the environment. Every bad variable is reported at once, one line
 * each, naming the variable, the rule and the value received (secrets are not echoed).
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const config = validated(ConfigSchema, env, candidate => {
    // Derived from where the service listens, so that the links and logs name the right port.
    candidate.PUBLIC_URL ??= defaultPublicUrl(candidate.HOST, candidate.PORT)
    // A second factor for admins is the production floor (ASVS 2.2); a developer's machine may leave it off.
    candidate.REQUIRE_MFA_FOR_ADMINS ??= candidate.NODE_ENV === 'production'
  })
  // The passkey settings derive from PUBLIC_URL as a URL; one that is none is reported by the consistency checks.
  const problems = [...productionProblems(config, (env.PUBLIC_URL ?? '') !== ''), ...consistencyProblems(config), ...(URL.canParse(config.PUBLIC_URL) ? webauthnProblems(config) : [])]
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/** Where the database is: all that `db:migrate` needs, so a deploy pipeline gives it no secrets. */
export const DatabaseConfigSchema = Type.Pick(ConfigSchema, ['DATABASE_URL', 'DATABASE_POOL_SIZE', 'DATA_DIR', 'DATABASE_CONNECT_TIMEOUT_SECONDS', 'DATABASE_QUERY_TIMEOUT_SECONDS'])
export type DatabaseConfig = Static<typeof DatabaseConfigSchema>

/** The database part of the configuration alone, validated like the whole. */
export function loadDatabaseConfig (env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  const config = validated(DatabaseConfigSchema, env)
  const problems = credentialUrlProblems(config)
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

function validated<S extends TObject> (schema: S, env: NodeJS.ProcessEnv, complete?: (candidate: Record<string, unknown>) => void): Static<S> {
  // Empty strings mean "unset", as in most .env tooling.
  const input: Record<string, string> = {}
  for (const key of Object.keys(schema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') input[key] = value
  }
  const problems = new Map<string, string>()
  // The raw value: Default and Convert change `input` in place.
  const problem = (name: string, rule: TSchema, message: string) => {
    if (!problems.has(name)) problems.set(name, `${name}: ${describe(rule, message)}, got ${neverEchoed.has(name) ? '(hidden)' : JSON.stringify(env[name])}`)
  }
  for (const [name, value] of Object.entries(input)) {
    const rule = schema.properties[name] as TSchema
    // Convert would read "5e3" as 5, "10.5" as 10 and "0x10" as 16: a whole number is written in
    // digits (an env file's stray spaces around them aside).
    if (rule.type === 'integer' && !/^\s*[0-9]+\s*$/.test(value)) {
      problem(name, rule, ruleOf(rule, 'Expected integer'))
      delete input[name]
    }
    // Likewise a fraction: "0x1" would read as 0 (a check turned off), "1e-1" as 0.1.
    if (rule.type === 'number' && !/^\s*[0-9]+(\.[0-9]+)?\s*$/.test(value)) {
      problem(name, rule, ruleOf(rule, 'Expected number'))
      delete input[name]
    }
  }
  const candidate = Value.Convert(schema, Value.Default(schema, input)) as Record<string, unknown>
  complete?.(candidate)
  for (const error of Value.Errors(schema, candidate)) problem(error.path.slice(1), error.schema, ruleOf(error.schema, error.message))
  if (problems.size > 0) throw new ConfigError([...problems.values()])
  return candidate as Static<S>
}

/** A variable's rule in words: TypeBox's message names the first check that failed, not the rule (min and max together, the values allowed). */
function ruleOf (rule: TSchema, message: string): string {
  if (rule.type === 'integer') return `must be a whole number from ${String(rule.minimum)} to ${String(rule.maximum)}`
  if (rule.type === 'number') return `must be a number from ${String(rule.minimum)} to ${String(rule.maximum)}, in digits (like 0.9)`
  if (rule.type === 'boolean') return 'must be true or false'
  const choices = (rule.anyOf as TSchema[] | undefined)?.map(choice => choice.const as unknown)
  if (choices !== undefined && choices.every(choice => typeof choice === 'string')) return `must be one of ${choices.join(', ')}`
  return message
}

/** http://localhost:PORT for a loopback or wildcard HOST, else that address. */
function defaultPublicUrl (host: unknown, port: unknown): string {
  // A bad HOST or PORT is reported as such, not once more as a bad PUBLIC_URL.
  if (typeof host !== 'string' || typeof port !== 'number') return 'http://localhost'
  const local = ['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost'].includes(host)
  const name = local ? 'localhost' : host.includes(':') ? `[${host}]` : host
  // As browsers write it (lower case, no default port, IPv6 compressed): PUBLIC_URL must be.
  return originOf(`http://${name}:${port}`)
}

function describe (schema: TSchema, message: string): string {
  return typeof schema.description === 'string' ? `${message} (${schema.description})` : message
}
