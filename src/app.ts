// buildApp(config, deps): the Fastify instance with every plugin and route, in order; it never listens. What they are given is built in dependencies.ts.
import type { Server } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import { type Config } from './config.js'
import { audienceOf, listOf, mailStopGraceMs, maxConnectionsOf, ownLinkPagesOf, serverTimeoutsOf } from './config-derived.js'
import { pingDatabase } from './db/prisma.js'
import { buildDependencies, type AppDeps } from './dependencies.js'
import { logRedaction } from './log-redaction.js'
import { accessTokens } from './plugins/access-tokens.js'
import { authenticate } from './plugins/authenticate.js'
import { retention } from './plugins/retention.js'
import { authorize } from './plugins/authorize.js'
import { clientAddresses } from './plugins/client-address.js'
import { cookieNames, cookies } from './plugins/cookies.js'
import { crossOrigin } from './plugins/cross-origin.js'
import { clientErrorHandler, errorHandler, frameworkErrorHandlerFor, MAX_PARAM_LENGTH } from './plugins/error-handler.js'
import { freshAuth } from './plugins/fresh-auth.js'
import { inputGuard } from './plugins/input-guard.js'
import { loadShedding } from './plugins/load-shedding.js'
import { connectionCap } from './plugins/connection-cap.js'
import { mailer } from './plugins/mailer.js'
import { totpReseal } from './plugins/totp-reseal.js'
import { unfinishedRequests } from './plugins/unfinished-requests.js'
import { metrics, type MetricsSettings, type ServerEdge } from './plugins/metrics.js'
import { rateLimits } from './plugins/rate-limits.js'
import { redis } from './plugins/redis.js'
import { requestFraming } from './plugins/request-framing.js'
import { requestId, requestIdOf } from './plugins/request-id.js'
import { securityHeaders } from './plugins/security-headers.js'
import { swagger } from './plugins/swagger.js'
import { writeTurns } from './plugins/write-turns.js'
import { OneLinePerRequest } from './request-logging.js'
import { adminRoutes } from './routes/admin.js'
import { accountRoutes } from './routes/accounts.js'
import { authRoutes } from './routes/auth.js'
import { CONSOLE_BUILD_DIR, consoleRoutes } from './routes/console.js'
import { healthRoutes } from './routes/health.js'
import { linkPageRoutes } from './routes/link-pages.js'
import { mfaRoutes } from './routes/mfa.js'
import { passkeyRoutes } from './routes/passkeys.js'
import { sessionRoutes } from './routes/sessions.js'
import { userRoutes } from './routes/users.js'
import { wellKnownRoutes } from './routes/well-known.js'
import { AdminUser } from './schemas/admin.js'
import { ErrorResponse, User } from './schemas/common.js'
import { Me } from './schemas/mfa.js'
import { Passkey } from './schemas/passkeys.js'
import { AccessClaims } from './schemas/sessions.js'
import { schemaController, schemaErrorFormatter } from './validation.js'

/** How a server of this process bounds slow clients and answers what Node's parser refuses: the API's port and the metrics port alike. */
function serverEdgeOf (config: Config): ServerEdge {
  const { connectionTimeout, headersTimeout, requestTimeout, connectionsCheckingInterval } = serverTimeoutsOf(config)
  return {
    connectionTimeout,
    requestTimeout,
    // Options of Node's http.createServer: Fastify sets no headers timeout (Node's default is 60 s)
    // and no checking interval (Node checks every 30 s), so a client dripping header lines kept
    // its connection about a minute.
    http: { headersTimeout, requestTimeout, connectionsCheckingInterval },
    // What Node's HTTP parser refuses (bad request line, headers too large, a timeout) answered in the catalogue's shape.
    clientErrorHandler
  }
}

/** Where /metrics is served and to whom: on PORT to holders of METRICS_TOKEN, or on METRICS_PORT with the API's bounds. */
function metricsServerOf (config: Config): Pick<MetricsSettings, 'token' | 'port' | 'host' | 'edge'> {
  return { token: config.METRICS_TOKEN, port: config.METRICS_PORT, host: config.HOST, edge: serverEdgeOf(config) }
}

function fastifyOptionsOf (config: Config, logger: FastifyBaseLogger | undefined): FastifyHttpOptions<Server> {
  const trustedProxies = listOf(config.TRUST_PROXY)
  const edge = serverEdgeOf(config)
  return {
    ...(logger === undefined
      ? { logger: { level: config.LOG_LEVEL, ...logRedaction } }
      : { loggerInstance: logger }),
    logController: new OneLinePerRequest(),
    // Only the named proxies may set X-Forwarded-For/-Proto; anyone else could spoof them.
    trustProxy: trustedProxies.length > 0 ? trustedProxies : false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    ...edge,
    // An HTTP/1.1 request without Host is refused by request-framing, in the catalogue's shape
    // and with every answer's headers: Node's own refusal is a bare 400.
    http: { ...edge.http, requireHostHeader: false },
    keepAliveTimeout: 72_000,
    // load-shedding answers those requests itself, in the catalogue's shape.
    return503OnClosing: false,
    // An incoming X-Request-Id is validated by requestIdOf rather than taken as is.
    requestIdHeader: false,
    genReqId: requestIdOf,
    // Fastify's 100 characters refused a passkey's long credential id before its route.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandlerFor(new Set(listOf(config.CORS_ORIGINS)), config.BODY_LIMIT_BYTES),
    schemaController,
    schemaErrorFormatter
  }
}

export async function buildApp (config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify(fastifyOptionsOf(config, deps.logger))
  const { now, ring, counters, services, limits, passwordPolicy, probeLogLevel } = await buildDependencies(config, deps, app.log, payload => app.accessTokens.sign(payload))

  // JSON only: no form posts and no text/plain, the content types a cross-site form can send.
  app.removeContentTypeParser('text/plain')
  for (const schema of [ErrorResponse, User, AccessClaims, AdminUser, Me, Passkey]) app.addSchema(schema)

  await app.register(connectionCap, { maxConnections: maxConnectionsOf(config) })
  await app.register(redis, { url: config.REDIS_URL })
  await app.register(clientAddresses, { behindProxy: listOf(config.TRUST_PROXY).length > 0 })
  await app.register(rateLimits, { defaultLimit: limits.default, redis: app.redis, keyPrefix: `${config.REDIS_KEY_PREFIX}rate:`, now })
  await app.register(errorHandler)
  await app.register(requestId)
  await app.register(loadShedding, {
    maxEventLoopDelayMs: config.LOAD_SHEDDING_MAX_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.LOAD_SHEDDING_MAX_EVENT_LOOP_UTILIZATION
  })
  await app.register(unfinishedRequests)
  await app.register(securityHeaders)
  await app.register(requestFraming, { bodyLimit: config.BODY_LIMIT_BYTES })
  await app.register(inputGuard)
  await app.register(crossOrigin, { ownOrigin: config.PUBLIC_URL, allowedOrigins: listOf(config.CORS_ORIGINS) })
  await app.register(swagger, { publicUrl: config.PUBLIC_URL, cookieSecure: config.COOKIE_SECURE, version: '1.0.0', ui: config.DOCS_ENABLED ? { limit: limits.docs } : null })
  await app.register(cookies, { secure: config.COOKIE_SECURE, sameSite: config.COOKIE_SAMESITE, now })
  await app.register(accessTokens, {
    ring,
    issuer: config.JWT_ISSUER ?? config.PUBLIC_URL,
    audience: audienceOf(config),
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
    cookieName: cookieNames(config.COOKIE_SECURE).access
  })
  await app.register(authenticate)
  await app.register(writeTurns, { waitSeconds: config.DATABASE_QUERY_TIMEOUT_SECONDS })
  await app.register(authorize, { ownOrigin: config.PUBLIC_URL })
  await app.register(freshAuth, { reauthentication: services.reauthentication, sessions: services.sessions })
  await app.register(mailer, { delivery: services.mailDelivery, pollSeconds: config.MAIL_POLL_SECONDS, stopGraceMs: mailStopGraceMs(config) })
  await app.register(retention, { retention: services.retention })
  await services.settings.start()
  if (config.AUTH_SECRET_PREVIOUS !== undefined) await app.register(totpReseal, { factors: services.factors })
  app.addHook('onClose', async () => { services.settings.stop(); await services.passwords.close() })

  // Before the routes: its hooks time every one of them.
  await app.register(metrics, {
    metrics: counters,
    countActiveSessions: services.sessions.countLive,
    now,
    ...metricsServerOf(config),
    logLevel: probeLogLevel
  })
  await app.register(healthRoutes, { pingDatabase: async () => await pingDatabase(deps.prisma), logLevel: probeLogLevel })
  await app.register(authRoutes, { ...services, passwordPolicy, limits })
  await app.register(accountRoutes, { ...services, passwordPolicy, limits })
  await app.register(mfaRoutes, { ...services, passwordPolicy, limits })
  await app.register(passkeyRoutes, { ...services, passwordPolicy, limits })
  await app.register(sessionRoutes, { sessions: services.sessions, verifyLimit: limits.verify })
  await app.register(userRoutes, { ...services, passwordPolicy, limits })
  await app.register(adminRoutes, { ...services, mailAccountLimit: limits.mailAccount })
  await app.register(wellKnownRoutes, { jwks: () => ring.jwks(), maxAgeSeconds: Math.min(300, config.JWT_KEY_PUBLISH_SECONDS) })
  await app.register(linkPageRoutes, { ...ownLinkPagesOf(config), passwordPolicy })
  if (config.CONSOLE_ENABLED) await app.register(consoleRoutes, { root: deps.consoleRoot ?? CONSOLE_BUILD_DIR, path: config.CONSOLE_PATH })
  return app
}
