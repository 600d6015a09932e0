// The checks a whole config must pass beyond its schema: settings that must agree, and what production refuses.
import { isIP } from 'node:net'
import { createRequire } from 'node:module'
import AjvCompiler from '@fastify/ajv-compiler'
import type ProxyAddr from '@fastify/proxy-addr'
import type { Config } from './config.js'
import { handsTokenToOwnPage, leadsToOwnPage, listOf, RESET_PAGE, VERIFICATION_PAGE } from './config-derived.js'
import { isWeakSecret, SECRET_BAR, TOKEN_BAR } from './config-weak-secrets.js'
import { Email } from './schemas/common.js'
import { lifetimeOrderProblems, type LifetimeName } from './services/admin/lifetime-bounds.js'

// Fastify's own proxy-addr, resolved from Fastify as Fastify resolves it (package.json does not
// name it): TRUST_PROXY is judged by the very code that compiles it at start.
const proxyAddr = createRequire(import.meta.resolve('fastify'))('@fastify/proxy-addr') as typeof ProxyAddr

/** The argon2id floor of OWASP's Password Storage Cheat Sheet; production never goes below it. */
export const ARGON2_FLOOR = { memoryKiB: 19_456, timeCost: 2, parallelism: 1 } as const

const LIFETIME_VARIABLES: Record<LifetimeName, string> = {
  accessTokenTtlSeconds: 'ACCESS_TOKEN_TTL_SECONDS',
  refreshTokenIdleTtlSeconds: 'REFRESH_TOKEN_IDLE_TTL_SECONDS',
  sessionAbsoluteTtlSeconds: 'SESSION_ABSOLUTE_TTL_SECONDS'
}

/** The token lifetimes' order, as the settings API keeps it (see lifetimeOrderProblems). */
function lifetimeProblems (config: Config): string[] {
  const lifetimes = { accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS, refreshTokenIdleTtlSeconds: config.REFRESH_TOKEN_IDLE_TTL_SECONDS, sessionAbsoluteTtlSeconds: config.SESSION_ABSOLUTE_TTL_SECONDS }
  return lifetimeOrderProblems(lifetimes).map(({ lifetime, rule }) => `${LIFETIME_VARIABLES[lifetime]}: must be ${rule} (REFRESH_TOKEN_IDLE_TTL_SECONDS)`)
}

export function consistencyProblems (config: Config): string[] {
  const problems = lifetimeProblems(config)
  if (config.METRICS_PORT !== undefined && config.METRICS_PORT === config.PORT) {
    problems.push('METRICS_PORT: must differ from PORT (leave it unset to serve /metrics on PORT to holders of METRICS_TOKEN)')
  }
  // Node refuses a headers timeout past the whole request's.
  if (config.HEADERS_TIMEOUT_SECONDS > config.REQUEST_TIMEOUT_SECONDS) {
    problems.push('HEADERS_TIMEOUT_SECONDS: must be at most REQUEST_TIMEOUT_SECONDS')
  }
  if (config.SHUTDOWN_DRAIN_SECONDS >= config.SHUTDOWN_TIMEOUT_SECONDS) {
    problems.push('SHUTDOWN_DRAIN_SECONDS: must be less than SHUTDOWN_TIMEOUT_SECONDS, which the drain is part of')
  }
  // Older sessions and links, the signs of use, are deleted after SESSION_RETENTION_DAYS; a first link must be able to expire unused.
  const unverifiedDays = config.UNVERIFIED_ACCOUNT_RETENTION_DAYS
  if (unverifiedDays > 0 && (unverifiedDays > config.SESSION_RETENTION_DAYS || unverifiedDays * 86_400 <= config.EMAIL_VERIFICATION_TTL_SECONDS)) {
    problems.push('UNVERIFIED_ACCOUNT_RETENTION_DAYS: must be 0, or at most SESSION_RETENTION_DAYS and longer than EMAIL_VERIFICATION_TTL_SECONDS')
  }
  if (config.PASSWORD_MAX_LENGTH < config.PASSWORD_MIN_LENGTH) {
    problems.push('PASSWORD_MAX_LENGTH: must be at least PASSWORD_MIN_LENGTH')
  }
  problems.push(...firstAdminProblems(config))
  if (config.COOKIE_SAMESITE === 'none' && !config.COOKIE_SECURE) {
    problems.push('COOKIE_SAMESITE: "none" requires COOKIE_SECURE=true (browsers drop such cookies)')
  }
  // Compared as written with the Origin a browser sends (lower case, no default port): any
  // other spelling would refuse every write of the service's own pages.
  if (!URL.canParse(config.PUBLIC_URL)) problems.push(`PUBLIC_URL: "${config.PUBLIC_URL}" is not a URL; write the service's origin, like https://auth.example.com`)
  else if (!isOrigin(config.PUBLIC_URL)) problems.push(`PUBLIC_URL: "${config.PUBLIC_URL}" is not written as browsers send its origin; write ${originOf(config.PUBLIC_URL)}`)
  for (const origin of listOf(config.CORS_ORIGINS)) {
    // A wildcard with credentials would let any site act as the signed-in user (OWASP ASVS 14.5.3).
    if (origin === '*' || origin === 'null') problems.push(`CORS_ORIGINS: "${origin}" would let any page call with the user's cookies; list exact origins`)
    else if (origin.includes('*')) problems.push(`CORS_ORIGINS: "${origin}" is a pattern, which would never match (origins are compared exactly); list each origin`)
    else if (!isOrigin(origin)) problems.push(`CORS_ORIGINS: "${origin}" is not an exact origin like https://app.example.com`)
  }
  if (config.LOGIN_BACKOFF_MAX_SECONDS < config.LOGIN_BACKOFF_BASE_SECONDS) {
    problems.push('LOGIN_BACKOFF_MAX_SECONDS: must be at least LOGIN_BACKOFF_BASE_SECONDS')
  }
  if (config.LOGIN_LOCKOUT_AFTER_FAILURES < config.LOGIN_BACKOFF_AFTER_FAILURES) {
    problems.push('LOGIN_LOCKOUT_AFTER_FAILURES: must be at least LOGIN_BACKOFF_AFTER_FAILURES')
  }
  if (config.AUTH_SECRET_PREVIOUS !== undefined && config.AUTH_SECRET === undefined) {
    problems.push('AUTH_SECRET_PREVIOUS: only beside AUTH_SECRET, the secret that replaces it')
  } else if (config.AUTH_SECRET_PREVIOUS !== undefined && config.AUTH_SECRET_PREVIOUS === config.AUTH_SECRET) {
    problems.push('AUTH_SECRET_PREVIOUS: the same as AUTH_SECRET; set it to the secret being replaced, or leave it unset')
  }
  if (config.JWT_ALGORITHM !== 'HS256' && config.JWT_KEYS_DIR === undefined) {
    problems.push(`JWT_KEYS_DIR: required with JWT_ALGORITHM=${config.JWT_ALGORITHM} (make a key with: npm run keys:generate)`)
  }
  for (const [name, page] of [['PASSWORD_RESET_URL', RESET_PAGE], ['EMAIL_VERIFICATION_URL', VERIFICATION_PAGE]] as const) {
    const template = config[name]
    if (template === undefined) continue
    if (!isLinkTemplate(template)) {
      problems.push(`${name}: must be an http(s) URL containing {token}, like https://app.example.com/path?token={token}`)
    } else if (leadsToOwnPage(config.PUBLIC_URL, template, page) && !handsTokenToOwnPage(template)) {
      // The page would tell every mailed link's holder that the link is incomplete.
      problems.push(`${name}: leads to the service's own page ${page}, which takes the token only as the value of "token" in the fragment or the query; write ${config.PUBLIC_URL}${page}#token={token}`)
    }
  }
  problems.push(...credentialUrlProblems(config), ...trustProxyProblems(config.TRUST_PROXY))
  return problems
}

/** The settings that name a server by a URL, as often as not with a password in it. */
const CREDENTIAL_URLS = ['DATABASE_URL', 'SMTP_URL', 'REDIS_URL'] as const

/**
 * One line per credential URL that does not read as the URL it is meant to be, never showing
 * it. A `/`, `?` or `#` left unencoded in the password either breaks the URL (the client's
 * `new URL()` throws at start, and Node's error carries the whole URL, password included, as
 * `input`), or quietly makes the rest of the password a path (`smtp://user:12/34@host`: host
 * `user`, port 12), which the `@` left after the host betrays.
 */
export function credentialUrlProblems (config: { [K in typeof CREDENTIAL_URLS[number]]?: string | undefined }): string[] {
  return CREDENTIAL_URLS
    .filter(name => config[name] !== undefined && !readsAsUrl(config[name]))
    .map(name => `${name}: not a valid URL; percent-encode reserved characters in the password (/ as %2F, ? as %3F, # as %23)`)
}

function readsAsUrl (value: string): boolean {
  // The authority runs to the first / ? or #: an @ in the path after it ended a password cut
  // short by a /. (An @ in the query is a parameter's, `?user=svc@tenant`, as pg reads it.)
  const path = value.replace(/^[^:]*:\/\/[^/?#]*/, '').split(/[?#]/, 1)[0] ?? ''
  return URL.canParse(value) && !path.includes('@')
}

const TRUSTS_EVERYONE = "would trust a large share of all client addresses, so those clients could name their own (rate limits, sessions, audit trail); list the proxy's addresses"
const NOT_AN_ADDRESS = 'is not an IP address, a CIDR range like 10.0.0.0/8, or one of loopback, linklocal, uniquelocal'
// A prefix of no bits: proxy-addr refuses it with a message that does not say why.
const NO_BITS = /\/0+(\.0+){0,3}$/
// An address in every /8 of IPv4, under every first four bits of IPv6, and across global unicast
// IPv6: what trusts many of them trusts much of the Internet (::ffff:0:0/96 is every IPv4 client,
// and proxy-addr takes it; 0.0.0.0/1 is half of them). No list of real proxies comes near.
const SPREAD = [
  Array.from({ length: 256 }, (_, first) => `${first}.123.45.67`),
  Array.from({ length: 16 }, (_, first) => `${first.toString(16)}123:4567::89`),
  // Global unicast IPv6, 2000::/3, in 32 slices.
  Array.from({ length: 32 }, (_, slice) => `${(0x2000 + slice * 0x100).toString(16)}:4567::89`)
]
// More than a quarter of either sample is a share of the Internet, not a proxy's addresses (the
// published ranges of the largest CDN span a dozen /8s; 0.0.0.0/1 or 2000::/3 span half or more).
const trustsEveryone = (trusts: (address: string, hop: number) => boolean) =>
  SPREAD.some(addresses => addresses.filter(address => trusts(address, 0)).length > addresses.length / 4)

const KEYWORDS = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** A keyword, or an address as net.isIP reads it, with a prefix length in digits. */
function isWrittenOut (entry: string): boolean {
  if (KEYWORDS.has(entry)) return true
  const [address = '', bits, ...rest] = entry.split('/')
  return isIP(address) !== 0 && rest.length === 0 && (bits === undefined || /^[0-9]{1,3}$/.test(bits) || isIP(bits) === 4)
}

/** ADMIN_EMAIL and ADMIN_PASSWORD, held to the rules of a registration. */
function firstAdminProblems (config: Config): string[] {
  const problems: string[] = []
  // The first admin's password keeps the policy of every other (counted as the API counts:
  // characters, not bytes, once normalised to NFC).
  const admin = config.ADMIN_PASSWORD
  const adminLength = admin === undefined ? 0 : [...admin.normalize('NFC')].length
  if (admin !== undefined && (adminLength < config.PASSWORD_MIN_LENGTH || adminLength > config.PASSWORD_MAX_LENGTH)) {
    problems.push('ADMIN_PASSWORD: must be PASSWORD_MIN_LENGTH to PASSWORD_MAX_LENGTH characters long, like every password')
  }
  // The address registration would take: an admin made with another could never get a reset mail.
  if (config.ADMIN_EMAIL !== undefined && !isNewEmail(config.ADMIN_EMAIL)) {
    problems.push('ADMIN_EMAIL: must be an email address as registration takes one, like admin@example.com')
  }
  return problems
}

/**
 * One line per TRUST_PROXY entry that Fastify would refuse at start (with a stack trace), or
 * that trusts every address, alone or with the others: whoever connects could then set
 * X-Forwarded-For to any address and be a new client at each request. Refused in every
 * environment: no setup needs it.
 */
function trustProxyProblems (value: string): string[] {
  const entries = listOf(value)
  const problems = entries.flatMap(entry => {
    // proxy-addr reads "1" as 0.0.0.1 and "127.1" as 127.0.0.1: a hop count meant, a proxy not trusted.
    if (!isWrittenOut(entry)) return [`TRUST_PROXY: "${entry}" ${NOT_AN_ADDRESS}${/^[0-9]+$/.test(entry) ? " (a number of hops is not taken: list the proxy's addresses)" : ''}`]
    let trusts: (address: string, hop: number) => boolean
    try {
      trusts = proxyAddr.compile(entry)
    } catch {
      return [`TRUST_PROXY: "${entry}" ${NO_BITS.test(entry) ? TRUSTS_EVERYONE : NOT_AN_ADDRESS}`]
    }
    return trustsEveryone(trusts) ? [`TRUST_PROXY: "${entry}" ${TRUSTS_EVERYONE}`] : []
  })
  if (problems.length === 0 && entries.length > 1 && trustsEveryone(proxyAddr.compile(entries))) problems.push(`TRUST_PROXY: together, "${value}" ${TRUSTS_EVERYONE}`)
  return problems
}

/**
 * A production start refuses what is only acceptable on a developer's machine. `publicUrlSet`:
 * PUBLIC_URL came from the environment (its default, http://localhost:PORT, is a developer's).
 */
export function productionProblems (config: Config, publicUrlSet = true): string[] {
  if (config.NODE_ENV !== 'production') return []
  const problems: string[] = []
  // Tokens carry it as iss and aud, the mailed links and the CSRF check use it: a
  // default would mint tokens and links for a machine no user reaches.
  if (!publicUrlSet) problems.push("PUBLIC_URL: required in production (the service's public https origin, like https://auth.example.com)")
  else if (!/^https:/i.test(config.PUBLIC_URL)) problems.push(`PUBLIC_URL: "${config.PUBLIC_URL}" is not https; production serves the API, its pages and its links over https only (TLS may end at the proxy)`)
  for (const name of ['PASSWORD_RESET_URL', 'EMAIL_VERIFICATION_URL'] as const) {
    // A link's token in cleartext is the account, to whoever is on the path.
    if (/^http:/i.test(config[name] ?? '')) problems.push(`${name}: "${config[name] ?? ''}" is not https; a mailed link carries its token over https only in production`)
  }
  if (config.AUTH_SECRET === undefined) {
    problems.push('AUTH_SECRET: required in production (generate one with: openssl rand -base64 48)')
  } else if (isWeakSecret(config.AUTH_SECRET, SECRET_BAR)) {
    problems.push('AUTH_SECRET: looks like a placeholder or low-entropy value; generate one with: openssl rand -base64 48')
  }
  if (config.METRICS_TOKEN !== undefined && isWeakSecret(config.METRICS_TOKEN, TOKEN_BAR)) {
    problems.push('METRICS_TOKEN: looks like a placeholder or low-entropy value; generate one with: openssl rand -base64 32')
  }
  if (config.ARGON2_MEMORY_KIB < ARGON2_FLOOR.memoryKiB) problems.push(`ARGON2_MEMORY_KIB: must be at least ${ARGON2_FLOOR.memoryKiB} in production`)
  if (config.ARGON2_TIME_COST < ARGON2_FLOOR.timeCost) problems.push(`ARGON2_TIME_COST: must be at least ${ARGON2_FLOOR.timeCost} in production`)
  if (!config.COOKIE_SECURE) problems.push('COOKIE_SECURE: must be true in production (TLS ends at the proxy, cookies stay Secure)')
  if (config.DATABASE_URL === undefined) problems.push('DATABASE_URL: required in production (the embedded database is for development)')
  if (config.SMTP_URL === undefined) problems.push('SMTP_URL: required in production (without it mails are only written to the log)')
  for (const origin of listOf(config.CORS_ORIGINS)) {
    if (origin.startsWith('http://')) problems.push(`CORS_ORIGINS: "${origin}" is not https; production allows credentials only to https origins`)
  }
  // Development's http://localhost is for a developer's browser; a production passkey signs in on https pages only.
  for (const origin of listOf(config.WEBAUTHN_ORIGINS ?? '')) {
    if (origin.startsWith('http://')) problems.push(`WEBAUTHN_ORIGINS: "${origin}" is not https; production takes passkeys from https pages only`)
  }
  return problems
}

// Compiled when ADMIN_EMAIL is set only: every start and every command reads this module.
const isNewEmail = (value: string): boolean =>
  AjvCompiler()({}, { customOptions: {} })({ schema: Email, method: 'POST', url: '/config', httpPart: 'body' })(value) === true

function isLinkTemplate (value: string): boolean {
  if (!value.includes('{token}')) return false
  try {
    const url = new URL(value.replaceAll('{token}', 'token'))
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}

/** How browsers write `value`'s origin, or `value` itself when it is no URL. */
export function originOf (value: string): string {
  try {
    return new URL(value).origin
  } catch {
    return value
  }
}

function isOrigin (value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value
  } catch {
    return false
  }
}
