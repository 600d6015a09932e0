// What the app reads from a validated config in its own terms: rate limits, mail settings, lists, server timeouts and connections.
import { readFileSync } from 'node:fs'
import type { Config } from './config.js'

export interface RateLimit {
  max: number
  windowSeconds: number
}

/** Reads a validated "requests/seconds" setting. */
export function rateOf (value: string): RateLimit {
  const [max, windowSeconds] = value.split('/').map(Number)
  return { max: max ?? 1, windowSeconds: windowSeconds ?? 1 }
}

/** Every rate limit in force, by use. */
export function rateLimitsOf (config: Config) {
  return {
    default: rateOf(config.RATE_LIMIT_DEFAULT),
    loginIp: rateOf(config.RATE_LIMIT_LOGIN_IP),
    loginAccount: rateOf(config.RATE_LIMIT_LOGIN_ACCOUNT),
    register: rateOf(config.RATE_LIMIT_REGISTER),
    refresh: rateOf(config.RATE_LIMIT_REFRESH),
    verify: rateOf(config.RATE_LIMIT_VERIFY),
    mail: rateOf(config.RATE_LIMIT_MAIL),
    mailAccount: rateOf(config.RATE_LIMIT_MAIL_ACCOUNT),
    docs: rateOf(config.RATE_LIMIT_DOCS)
  }
}

export type RateLimits = ReturnType<typeof rateLimitsOf>

/** Splits a comma-separated setting into trimmed, non-empty items. */
export function listOf (value: string): string[] {
  return value.split(',').map(item => item.trim()).filter(item => item.length > 0)
}

export interface MailSettings {
  /** The From header of every mail. */
  from: string
  /** Link templates; `{token}` is replaced by the mailed token. */
  passwordResetUrl: string
  emailVerificationUrl: string
}

/** The service's own pages of the mailed links (routes/link-pages.ts), where the default links lead. */
export const VERIFICATION_PAGE = '/verify-email'
export const RESET_PAGE = '/reset-password'

/**
 * The mail settings in force, with their defaults derived from PUBLIC_URL. The default links
 * carry the token in the fragment, which no browser sends: it stays out of every server's and
 * proxy's log and out of `Referer`, and the service's own pages read it from there.
 */
export function mailSettingsOf (config: Config): MailSettings {
  return {
    from: config.MAIL_FROM ?? `no-reply@${new URL(config.PUBLIC_URL).hostname}`,
    passwordResetUrl: config.PASSWORD_RESET_URL ?? `${config.PUBLIC_URL}${RESET_PAGE}#token={token}`,
    emailVerificationUrl: config.EMAIL_VERIFICATION_URL ?? `${config.PUBLIC_URL}${VERIFICATION_PAGE}#token={token}`
  }
}

/**
 * How long a stop lets the sends under way go on before cutting them short: half of what the
 * shutdown has left after its drain (2.5 s by default), so that recording their retry and
 * closing the pool still fit in SHUTDOWN_TIMEOUT_SECONDS.
 */
export function mailStopGraceMs (config: Config): number {
  return (config.SHUTDOWN_TIMEOUT_SECONDS - config.SHUTDOWN_DRAIN_SECONDS) * 500
}

// Stands for `{token}` while a template is read as a URL: base64url, as a token is, so that
// it reads the same in a path, a query or a fragment.
const TOKEN_PLACE = 'tokenGoesHere0'

/** Whether links made from `template` (a valid one) open the service's own `page`. */
export function leadsToOwnPage (publicUrl: string, template: string, page: string): boolean {
  const url = new URL(template.replaceAll('{token}', TOKEN_PLACE))
  return url.origin === publicUrl && url.pathname === page
}

/**
 * Whether the service's own page finds the token in links made from `template`, read as the
 * page's script reads it (routes/link-pages.ts): the base64url start of the parameter `token`
 * of the fragment, else of the query. A check stricter than the page would refuse to start
 * with a template that works (`#token={token}?utm_source=mail`).
 */
export function handsTokenToOwnPage (template: string): boolean {
  const url = new URL(template.replaceAll('{token}', TOKEN_PLACE))
  const tokenIn = (params: string) => /^[A-Za-z0-9_-]+/.exec(new URLSearchParams(params).get('token') ?? '')?.[0]
  return (tokenIn(url.hash.slice(1)) ?? tokenIn(url.search.slice(1))) === TOKEN_PLACE
}

/**
 * Which of the service's own link pages to serve: those a link template leads to, whatever
 * carries the token (the query, or the fragment that keeps it out of every server's log).
 */
export function ownLinkPagesOf (config: Config): { verification: boolean, reset: boolean } {
  const { emailVerificationUrl, passwordResetUrl } = mailSettingsOf(config)
  return {
    verification: leadsToOwnPage(config.PUBLIC_URL, emailVerificationUrl, VERIFICATION_PAGE),
    reset: leadsToOwnPage(config.PUBLIC_URL, passwordResetUrl, RESET_PAGE)
  }
}

/** The `aud` of access tokens (JWT_AUDIENCE, by default PUBLIC_URL), also their `client_id`. */
export function audienceOf (config: Config): string {
  return config.JWT_AUDIENCE ?? config.PUBLIC_URL
}

export interface ServerTimeouts {
  /** A connection silent this long is closed without an answer (nothing received or sent, a request in progress or not). */
  connectionTimeout: number
  /** A request's headers must all arrive within this long of its first byte. */
  headersTimeout: number
  /** A request's headers and body must all arrive within this long of its first byte. */
  requestTimeout: number
  /** How often Node looks for requests past those two bounds. */
  connectionsCheckingInterval: number
}

/**
 * How long past the request timeout a silent connection lives: Node answers a request that
 * stopped arriving 408 at its next check (at most a second late), and the idle timeout must
 * not close the connection silently first, however busy the event loop.
 */
const IDLE_PAST_REQUEST_TIMEOUT_MS = 10_000

/**
 * The HTTP server's bounds on slow clients, in milliseconds. Node only looks for requests
 * past their headers or request timeout every `connectionsCheckingInterval` (30 s by
 * default), so a client dripping a header line every few seconds held its connection up to
 * 30 s past its bound; checked ten times within the headers timeout (at most every second),
 * a connection outlives its bound by a tenth of the headers timeout at most.
 *
 * The idle timeout still closes what those bounds leave open (an answer its client does not
 * read, a request whose answer is long in coming), but only after the request timeout: fixed
 * at 30 s, it closed a client that went silent halfway through its body without the 408 that
 * REQUEST_TIMEOUT_SECONDS (30 s by default, up to 300) promises.
 */
export function serverTimeoutsOf (config: Config): ServerTimeouts {
  const headersTimeout = config.HEADERS_TIMEOUT_SECONDS * 1000
  const requestTimeout = config.REQUEST_TIMEOUT_SECONDS * 1000
  return {
    connectionTimeout: requestTimeout + IDLE_PAST_REQUEST_TIMEOUT_MS,
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.min(1000, headersTimeout / 10)
  }
}

/**
 * File descriptors kept from the connections' share: the database pool, Redis, mail, logs; the
 * embedded database holds one per table and index file it has opened besides (about 180 idle).
 */
const DESCRIPTORS_KEPT = { server: 256, embedded: 512 }
/** Each open connection holds about 5 KB: the default cap keeps a million-descriptor limit from meaning gigabytes. */
const DEFAULT_MAX_CONNECTIONS = 16_384

/** The process's open-file limit (its soft limit, which Node raises to the hard one at start), or null: unlimited, or not Linux. */
export function openFileLimit (limits = (): string => readFileSync('/proc/self/limits', 'utf8')): number | null {
  try {
    const soft = /^Max open files\s+(\S+)/m.exec(limits())?.[1]
    return soft === undefined || soft === 'unlimited' ? null : Number(soft)
  } catch {
    return null
  }
}

/** MAX_CONNECTIONS, or what the open-file limit leaves for connections (at most DEFAULT_MAX_CONNECTIONS). */
export function maxConnectionsOf (config: Config, fileLimit = openFileLimit()): number {
  if (config.MAX_CONNECTIONS !== undefined) return config.MAX_CONNECTIONS
  if (fileLimit === null) return DEFAULT_MAX_CONNECTIONS
  const kept = config.DATABASE_URL === undefined ? DESCRIPTORS_KEPT.embedded : DESCRIPTORS_KEPT.server
  return Math.max(16, Math.min(DEFAULT_MAX_CONNECTIONS, fileLimit - kept))
}
