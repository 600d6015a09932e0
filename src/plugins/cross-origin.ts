// Cross-origin policy: CORS with credentials for the configured origins, and CSRF refusal for everyone else.
import fastifyCors from '@fastify/cors'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { presentsBearer } from './access-tokens.js'
import { SESSION_HEADER } from './authenticate.js'

export interface CrossOriginSettings {
  /** The service's own origin (PUBLIC_URL). */
  ownOrigin: string
  /** Exact origins of the browser apps allowed to call with credentials. */
  allowedOrigins: string[]
}

export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

// A page on another origin reads only the safelisted headers (Fetch standard) unless told:
// the wait of a 429 or 503, the id to quote in a support request, and the rate limit's state.
const EXPOSED_HEADERS = ['retry-after', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

/**
 * The CORS headers @fastify/cors gives an answer to `origin`, for the answers its hooks never
 * reach (what the router refuses before any hook): a listed origin's page then reads the
 * refusal instead of a network error.
 */
export function corsAnswerHeaders (origin: string | undefined, allowedOrigins: ReadonlySet<string>): Record<string, string> {
  if (origin === undefined || !allowedOrigins.has(origin)) return { vary: 'Origin' }
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': EXPOSED_HEADERS.join(', '), vary: 'Origin' }
}

/**
 * Whether a state-changing request may come from where the browser says it comes from
 * (OWASP CSRF Cheat Sheet, "Verifying Origin with standard headers" and "Fetch Metadata"):
 * an Origin must match exactly (scheme, host, port; `null` never does); without one,
 * Sec-Fetch-Site must be same-origin or none; a request with neither is not a browser's. A
 * Referer is not judged (the cheat sheet's fallback for browsers too old for both): the page
 * that forges the request chooses its own referrer policy and sends none, so it would stop no
 * attacker, while it refused clients that forward one or add one on a redirect.
 */
export function isTrustedSource (request: FastifyRequest, trusted: ReadonlySet<string>): boolean {
  const origin = request.headers.origin
  if (origin !== undefined) return trusted.has(origin)
  const site = request.headers['sec-fetch-site']
  return site === undefined || site === 'same-origin' || site === 'none'
}

/**
 * A preflight from an origin neither listed (those are answered by @fastify/cors before this)
 * nor the service's own (browsers send none from it, and the refusal's message would be wrong):
 * refused saying why. It fell through to the router's 405, which sent the app's developer
 * looking at the method rather than at CORS_ORIGINS.
 */
function isRefusedPreflight (request: FastifyRequest, trusted: ReadonlySet<string>): boolean {
  const origin = request.headers.origin
  return request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined && origin !== undefined && !trusted.has(origin)
}

async function crossOriginPlugin (app: FastifyInstance, settings: CrossOriginSettings) {
  const trusted = new Set([settings.ownOrigin, ...settings.allowedOrigins])
  const allowed = new Set(settings.allowedOrigins)

  await app.register(fastifyCors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization', 'x-request-id', SESSION_HEADER],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    // An OPTIONS from a listed origin without Access-Control-Request-Method is answered as a
    // preflight, not with @fastify/cors's plain-text 400, outside the service's error shape.
    strictPreflight: false
  })

  // Applied to every state-changing request without a Bearer token, not only to those
  // carrying cookies: a cross-site page can never reach login, register or a
  // cookie-authenticated route, and no route can forget to opt in. Bearer clients are not
  // affected: a cross-site page cannot attach that header without passing CORS, and no route
  // reads the cookies of a request that carries it (presentsBearer). Any other scheme is
  // checked: a browser attaches Basic or Negotiate credentials by itself to a site behind
  // HTTP authentication, cookies with them.
  app.addHook('onRequest', (request, _reply, done) => {
    const refused = !SAFE_METHODS.has(request.method) && !presentsBearer(request) && !isTrustedSource(request, trusted)
    done(refused || isRefusedPreflight(request, trusted) ? apiError('CSRF_REJECTED') : undefined)
  })
}

export const crossOrigin = fp(crossOriginPlugin, { name: 'cross-origin' })
