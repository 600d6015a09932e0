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
    /** The request is past its onRequest hooks, and so past the rate limits. */
    pastOnRequest: boolean
  }
}

async function authenticatePlugin (app: FastifyInstance) {
  app.decorateRequest('caller', null)
  app.decorateRequest('pastOnRequest', false)
  // @fastify/rate-limit appends its check to each route's onRequest hooks, and every onRequest
  // hook runs before any preParsing one: this root hook marks the request as counted.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    request.pastOnRequest = true
    done(null, payload)
  })

  /**
   * preParsing guard (after the rate limits, which run onRequest, so that unauthenticated
   * floods are counted too; before any body is parsed): the Authorization header wins over
   * the cookie, with no fallback when it is bad. Tokens are never read from the URL.
   */
  async function authenticate (request: FastifyRequest) {
    // In onRequest, however attached, it would refuse a flood of bad tokens before any of it was
    // counted (regression: STYLE's recipe put it there).
    if (!request.pastOnRequest) throw new Error('app.authenticate runs in preParsing, after the rate limits; in onRequest it runs before them')
    const claims = app.accessTokens.verify(app.accessTokens.presented(request))
    request.caller = { userId: claims.sub, sessionId: claims.sid, role: claims.role, claims }
  }
  app.decorate('authenticate', authenticate)
}

export const authenticate = fp(authenticatePlugin, { name: 'authenticate', dependencies: ['access-tokens'] })
