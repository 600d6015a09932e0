// Prometheus metrics: requests by route and status, auth outcomes, live sessions; served only to whoever is configured to scrape them.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Server } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance, type FastifyReply, type FastifyRequest, type LogLevel } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { reasonOf } from '../db/errors.js'
import { apiError } from '../errors.js'
import type { AuthMetrics, LoginMetricResult, MailMetrics, MailOutcome } from '../services/metrics.js'
import { errorHandler } from './error-handler.js'
import { unfinishedRequests } from './unfinished-requests.js'

/** Connections METRICS_PORT holds at once: past them a new one is closed unanswered. */
export const METRICS_MAX_CONNECTIONS = 64

/**
 * How long a count of the live sessions (`auth_active_sessions`) answers the scrapes after it.
 * The count is a join over every live session (some 140 ms of the database at 500 000), and
 * was run at every scrape: 32 clients scraping METRICS_PORT without pause (it has no rate
 * limit, and no token unless METRICS_TOKEN is set) slowed every request that needed the
 * database, `/ready` to 1.65 s. 5 s is far below Prometheus's scrape interval (15–60 s), so
 * a scraper still gets a count of its own at each scrape; only scrapes closer together than
 * that (two Prometheus servers, someone's curl, a flood) share one, and the database counts
 * at most once per 5 s per instance, whoever scrapes.
 */
export const ACTIVE_SESSIONS_MAX_AGE_SECONDS = 5

/** A registry of this app's own (never prom-client's global one) and the counters the services feed. */
export interface Metrics {
  registry: Registry
  auth: AuthMetrics
  mail: MailMetrics
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  const logins = new Counter({ name: 'auth_logins_total', help: 'Login attempts, by result', labelNames: ['result'], registers: [registry] })
  const refreshes = new Counter({ name: 'auth_refreshes_total', help: 'Refresh-token exchanges, by result', labelNames: ['result'], registers: [registry] })
  const reuse = new Counter({ name: 'auth_refresh_reuse_detected_total', help: 'Retired refresh tokens presented again (their sessions were revoked)', registers: [registry] })
  const mails = new Counter({ name: 'auth_mail_deliveries_total', help: 'Attempts to send a mail of the outbox, by outcome: sent, retry (will be tried again), given_up, dropped (nothing left to send: its link died meanwhile, or a reset for an address no active account has, or whose account changed as its link was made)', labelNames: ['outcome'], registers: [registry] })
  // Every series exists from the start at 0, so rates and alerts work before the first event.
  for (const result of ['success', 'invalid_credentials', 'email_not_verified', 'mfa_required'] satisfies LoginMetricResult[]) logins.inc({ result }, 0)
  for (const result of ['success', 'failure']) refreshes.inc({ result }, 0)
  for (const outcome of ['sent', 'retry', 'given_up', 'dropped'] satisfies MailOutcome[]) mails.inc({ outcome }, 0)
  return {
    registry,
    auth: {
      login: result => logins.inc({ result }),
      refresh: result => refreshes.inc({ result }),
      reuseDetected: () => reuse.inc()
    },
    mail: { mail: outcome => mails.inc({ outcome }) }
  }
}

/** The options that bound a server's slow clients and answer what Node's HTTP parser refuses. */
export type ServerEdge = Pick<FastifyHttpOptions<Server>, 'connectionTimeout' | 'requestTimeout' | 'http' | 'clientErrorHandler'>

export interface MetricsSettings {
  metrics: Metrics
  /** Live sessions across all users, read at a scrape at most every ACTIVE_SESSIONS_MAX_AGE_SECONDS. */
  countActiveSessions: () => Promise<number>
  /** The clock that times how long a count is reused (the system's when not given). */
  now?: () => Date
  /** METRICS_TOKEN: scrapers must send `Authorization: Bearer <token>`. */
  token: string | undefined
  /** METRICS_PORT: serve /metrics on this port of `host` rather than on the API's port. */
  port: number | undefined
  host: string
  /** On METRICS_PORT, the API server's bounds on slow clients and its answers to what Node's parser refuses. */
  edge: ServerEdge
  /** Scrapes come every few seconds: their request lines are logged at this level. */
  logLevel: LogLevel
}

async function metricsPlugin (app: FastifyInstance, settings: MetricsSettings) {
  // Nobody may scrape: timing every request for a histogram nobody reads would cost each one
  // for nothing (and /metrics is never public).
  if (settings.token === undefined && settings.port === undefined) return
  const { registry } = settings.metrics
  const requests = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status code; _count is the number of requests',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  app.addHook('onResponse', (request, reply, done) => {
    // The route's template, never the raw URL (ids would make a series per user); 404s share one.
    const route = request.routeOptions.url ?? 'unmatched'
    requests.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    done()
  })

  activeSessionsGauge(registry, settings, app.log)

  collectDefaultMetrics({ register: registry })
  const route = {
    method: 'GET' as const,
    url: '/metrics',
    logLevel: settings.logLevel,
    // Operators need the numbers most when the process is under pressure.
    config: { loadShedding: false },
    // Not part of the public API document; see docs/operations.md, Metrics.
    schema: { hide: true },
    // A preParsing guard, as `authenticate`: the rate limit runs onRequest before it, so on
    // the API port wrong tokens are counted too.
    preParsing: settings.token === undefined ? [] : [bearerGuard(settings.token)],
    handler: async (_request: FastifyRequest, reply: FastifyReply) => {
      const body = await registry.metrics()
      return reply.type(registry.contentType).header('cache-control', 'no-store').send(body)
    }
  }

  if (settings.port === undefined) {
    app.route(route)
    return
  }
  const server = Fastify({ ...settings.edge, loggerInstance: app.log.child({ component: 'metrics' }) })
  // Scrapers are few: whoever reaches the port cannot hold the process's file descriptors (see connection-cap.ts).
  server.server.maxConnections = METRICS_MAX_CONNECTIONS
  await server.register(errorHandler)
  await server.register(unfinishedRequests)
  server.route(route)
  app.addHook('onReady', async () => { await server.listen({ host: settings.host, port: settings.port }) })
  // Closed alongside the API's server rather than after it: each gives the requests still
  // arriving the same second (unfinished-requests.ts), at the same time.
  let closing: Promise<undefined> | undefined
  app.addHook('preClose', async () => { closing = server.close() })
  app.addHook('onClose', async () => { await (closing ?? server.close()) })
}

/**
 * `auth_active_sessions`: counted in the database at a scrape, then reused for
 * ACTIVE_SESSIONS_MAX_AGE_SECONDS; the scrapes arriving while a count runs share it.
 */
function activeSessionsGauge (registry: Registry, settings: Pick<MetricsSettings, 'countActiveSessions' | 'now'>, log: FastifyBaseLogger): void {
  const now = settings.now ?? (() => new Date())
  let counted = false
  // When the last count ended, by `now`: until ACTIVE_SESSIONS_MAX_AGE_SECONDS later, scrapes
  // answer with its value; a failed one waits as long before the next (a database refusing
  // connections is not asked again at every scrape).
  let countedAt: number | undefined
  // The count under way: the scrapes arriving meanwhile wait for it rather than each asking again.
  let counting: Promise<void> | undefined
  const countInto = async (gauge: Gauge) => {
    try {
      gauge.set(await settings.countActiveSessions())
      counted = true
    } catch (error) {
      // The database is down: the scrape still answers, with the last known value; before
      // the first count, with none (NaN), rather than a 0 that reads as every session ended.
      if (!counted) gauge.set(Number.NaN)
      log.warn({ reason: reasonOf(error) }, 'metrics: could not count the active sessions')
    } finally {
      countedAt = now().getTime()
    }
  }
  new Gauge({ // eslint-disable-line no-new -- registered with the registry, which owns it
    name: 'auth_active_sessions',
    help: `Sessions that can still be used, across all users (the same value on every instance), counted at most every ${ACTIVE_SESSIONS_MAX_AGE_SECONDS} s`,
    registers: [registry],
    async collect () {
      const age = countedAt === undefined ? Number.POSITIVE_INFINITY : now().getTime() - countedAt
      // A clock set back (age below 0) counts again rather than trusting the count for longer.
      if (age >= 0 && age < ACTIVE_SESSIONS_MAX_AGE_SECONDS * 1000) return
      counting ??= countInto(this).finally(() => { counting = undefined })
      await counting
    }
  })
}

/** Compares digests in constant time: neither the token's content nor its length leaks. */
function bearerGuard (token: string) {
  const expected = digest(token)
  return async (request: FastifyRequest) => {
    // RFC 6750 2.1, as for access tokens: the scheme in any case, then one or more spaces.
    const presented = /^Bearer +(.+)$/i.exec(request.headers.authorization ?? '')?.[1]
    if (presented === undefined) throw apiError('AUTH_REQUIRED')
    if (!timingSafeEqual(digest(presented), expected)) throw apiError('AUTH_TOKEN_INVALID')
  }
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

export const metrics = fp(metricsPlugin, { name: 'metrics', dependencies: ['error-handler', 'load-shedding'] })
