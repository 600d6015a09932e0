// Who is calling: an access token from a Bearer header or, failing that, the access cookie.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import type { AccessTokenClaims } from './access-token-jwt.js'

/**
 * The session a request is meant for, when it says: a client sending a call again after a
 * refresh names the session whose token expired, and credentials replaced meanwhile (cookies
 * shared with another app that signed someone in) must not run it as the new session.
 */
export const SESSION_HEADER = 'x-auth-session-id'

export interface Caller {
  userId: string
  sessionId: string
  role: string
  claims: AccessTokenClaims
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    caller: Caller | null
  }
}

async function authenticatePlugin (app: FastifyInstance) {
  app.decorateRequest('caller', null)

  /**
   * preParsing guard (after the rate limits, which run onRequest, so that unauthenticated
   * floods are counted too; before any body is parsed): a Bearer header wins over the cookie,
   * with no fallback when it is bad (AccessTokens.presented). Tokens are never read from the URL.
   */
  async function authenticate (request: FastifyRequest) {
    const claims = app.accessTokens.verify(app.accessTokens.presented(request))
    const meant = request.headers[SESSION_HEADER]
    if (meant !== undefined && meant !== claims.sid) throw apiError('AUTH_SESSION_MISMATCH')
    request.caller = { userId: claims.sub, sessionId: claims.sid, role: claims.role, claims }
  }
  app.decorate('authenticate', authenticate)

  // @fastify/rate-limit appends its check to each route's onRequest hooks: the guard there, a
  // route's own or its scope's, would refuse a flood of bad tokens before any of it was counted
  // (regression: STYLE's recipe put it there). The app does not start so; checked once, from
  // the hooks Fastify lists by name, at no cost per request.
  app.addHook('onReady', async () => {
    const misplaced = routesAuthenticatingOnRequest(app.printRoutes({ includeHooks: true, commonPrefix: false }))
    if (misplaced.length > 0) throw new Error(`app.authenticate runs in preParsing, after the rate limits, not in onRequest: ${misplaced.join(', ')}`)
  })
}

/** The routes of a `printRoutes` listing whose onRequest hooks include the guard (bound or not). */
function routesAuthenticatingOnRequest (listing: string): string[] {
  const routes: string[] = []
  let route = ''
  for (const line of listing.split('\n')) {
    const named = /(\/\S*) \(([A-Z]+)\)/.exec(line)
    if (named !== null) route = `${named[2] ?? ''} ${named[1] ?? ''}`
    else if (/\(onRequest\) \[.*"(bound )?authenticate\(\)"/.test(line) && !routes.includes(route)) routes.push(route)
  }
  return routes
}

export const authenticate = fp(authenticatePlugin, { name: 'authenticate', dependencies: ['access-tokens'] })
