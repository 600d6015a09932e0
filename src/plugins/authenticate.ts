// Who is calling: an access token from the Authorization header or, failing that, the access cookie.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AccessTokenClaims } from './access-token-jwt.js'

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
   * floods are counted too; before any body is parsed): the Authorization header wins over
   * the cookie, with no fallback when it is bad. Tokens are never read from the URL.
   */
  async function authenticate (request: FastifyRequest) {
    const claims = app.accessTokens.verify(app.accessTokens.presented(request))
    request.caller = { userId: claims.sub, sessionId: claims.sid, role: claims.role, claims }
  }
  app.decorate('authenticate', authenticate)

  // @fastify/rate-limit appends its check to a route's own onRequest hooks: there, the guard
  // would refuse a flood of bad tokens before any of it was counted. A route that puts it
  // there does not start.
  app.addHook('onRoute', route => {
    if ([route.onRequest].flat().includes(authenticate)) {
      throw new Error(`${route.method.toString()} ${route.url}: app.authenticate runs in preParsing, after the rate limits; in onRequest it runs before them`)
    }
  })
}

export const authenticate = fp(authenticatePlugin, { name: 'authenticate', dependencies: ['access-tokens'] })
