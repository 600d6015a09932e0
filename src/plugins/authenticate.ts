// Who is calling: an access token from the Authorization header or, failing that, the access cookie.
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'

export interface AuthenticateSettings {
  /** HS256 key for access tokens. */
  key: Buffer
  issuer: string
  audience: string
  clockToleranceSeconds: number
}

/** The verified claims of the caller's access token. */
export interface AccessTokenClaims {
  sub: string
  sid: string
  role: string
  email_verified: boolean
  iss: string
  aud: string
  iat: number
  exp: number
  jti: string
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
    /** Verifies an access token (signature, algorithm, iss, aud, typ, exp); throws a catalogue 401. */
    verifyAccessToken: (token: string) => AccessTokenClaims
  }
  interface FastifyRequest {
    caller: Caller | null
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-_.]+)$/i

async function authenticatePlugin (app: FastifyInstance, settings: AuthenticateSettings) {
  await app.register(fastifyJwt, {
    secret: settings.key,
    // RFC 9068 2.1: access tokens are typed, so no other JWT of ours can pass for one.
    sign: { algorithm: 'HS256', iss: settings.issuer, aud: settings.audience, header: { alg: 'HS256', typ: 'at+jwt' } },
    verify: {
      // Pinned: the header's alg is never trusted to choose how a token is checked.
      algorithms: ['HS256'],
      allowedIss: settings.issuer,
      allowedAud: settings.audience,
      checkTyp: 'at+jwt',
      clockTolerance: settings.clockToleranceSeconds,
      requiredClaims: ['sub', 'sid', 'role', 'email_verified', 'iss', 'aud', 'iat', 'exp', 'jti']
    }
  })

  app.decorateRequest('caller', null)
  app.decorate('verifyAccessToken', (token: string) => verify(app, token))

  /**
   * preParsing guard (after the rate limits, which run onRequest, so that unauthenticated
   * floods are counted too; before any body is parsed): the Authorization header wins over
   * the cookie, with no fallback when it is bad. Tokens are never read from the URL.
   */
  app.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    const { token, via } = presentedToken(request)
    const claims = verify(app, token)
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

function verify (app: FastifyInstance, token: string): AccessTokenClaims {
  try {
    return app.jwt.verify<AccessTokenClaims>(token)
  } catch (error) {
    const code = (error as { code?: string }).code
    throw apiError(code === 'FAST_JWT_EXPIRED' ? 'AUTH_TOKEN_EXPIRED' : 'AUTH_TOKEN_INVALID')
  }
}

export const authenticate = fp(authenticatePlugin, { name: 'authenticate', dependencies: ['cookies'] })
