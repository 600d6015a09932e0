// Who is calling: an access token from the Authorization header or, failing that, the access cookie.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import type { AccessTokenClaims, AccessTokenJwt } from '../services/tokens/jwt.js'

export type { AccessTokenClaims }

export interface AuthenticateSettings {
  /** Verifies access tokens with the configured keys. */
  jwt: AccessTokenJwt
}

export interface Caller {
  userId: string
  sessionId: string
  role: string
  claims: AccessTokenClaims
  /** How the token arrived: a cookie-authenticated request is answered with cookies only. */
  via: 'header' | 'cookie'
}

declare module 'fastify' {
  interface FastifyInstance {
    authenticate: (request: FastifyRequest) => Promise<void>
    /** Verifies an access token (kid, signature, algorithm, iss, aud, typ, exp, nbf); throws a catalogue 401. */
    verifyAccessToken: (token: string) => AccessTokenClaims
  }
  interface FastifyRequest {
    caller: Caller | null
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-_.]+)$/i

async function authenticatePlugin (app: FastifyInstance, { jwt }: AuthenticateSettings) {
  app.decorateRequest('caller', null)
  app.decorate('verifyAccessToken', (token: string) => jwt.verify(token))

  /**
   * preParsing guard (after the rate limits, which run onRequest, so that unauthenticated
   * floods are counted too; before any body is parsed): the Authorization header wins over
   * the cookie, with no fallback when it is bad. Tokens are never read from the URL.
   */
  app.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    const { token, via } = presentedToken(request)
    const claims = jwt.verify(token)
    request.caller = { userId: claims.sub, sessionId: claims.sid, role: claims.role, claims, via }
  })
}

function presentedToken (request: FastifyRequest): { token: string, via: Caller['via'] } {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = BEARER.exec(header)
    if (match?.[1] === undefined) throw apiError('AUTH_TOKEN_INVALID')
    return { token: match[1], via: 'header' }
  }
  const cookie = request.authCookies().accessToken
  if (cookie === undefined || cookie === '') throw apiError('AUTH_REQUIRED')
  return { token: cookie, via: 'cookie' }
}

export const authenticate = fp(authenticatePlugin, { name: 'authenticate', dependencies: ['cookies'] })
