// The access-token layer: @fastify/jwt registered once per key of the ring, behind `app.accessTokens` (sign, verify, the token a request presents).
import fastifyJwt, { type JWT } from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { createAccessTokenJwt, jwtOptionsOf, type AccessTokenJwt, type JwtSettings } from './access-token-jwt.js'

export interface AccessTokenSettings extends JwtSettings {
  /** The access cookie's name, read when a request has no Bearer header. */
  cookieName: string
}

declare module 'fastify' {
  interface FastifyInstance {
    accessTokens: AccessTokenJwt & {
      /** The token a request presents: a Bearer header wins over the cookie, with no fallback when it is bad; another scheme is read as none. */
      presented: (request: FastifyRequest) => string
    }
  }
}

// RFC 6750 2.1: the scheme in any case, one or more spaces, the token (a JWT's characters).
const BEARER = /^Bearer +([A-Za-z0-9\-_.]+)$/i
// A malformed Bearer header (`Bearer\t…`, `Bearer…`) is still one, refused as such: no browser
// attaches it by itself, as it does Basic or Negotiate.
const BEARER_SCHEME = /^Bearer/i

/**
 * Whether a request's Authorization header is of the Bearer scheme, its token well-formed or
 * not. The header, not a cookie, is then what the request authenticates with: no route reads
 * its auth cookies (the header wins, with no fallback), and the CSRF check lets it through
 * (cross-origin.ts), which would be unsound if a route fell back to the cookies it guards.
 */
export function presentsBearer (request: FastifyRequest): boolean {
  return BEARER_SCHEME.test(request.headers.authorization ?? '')
}

async function accessTokensPlugin (app: FastifyInstance, settings: AccessTokenSettings) {
  const keys = settings.ring.all()
  for (const key of keys) await app.register(fastifyJwt, jwtOptionsOf(key, settings, settings.cookieName))
  // With namespaces, `app.jwt` is a map of them, one per kid (not declared globally: its type is @fastify/jwt's, shared).
  const instances = app.jwt as unknown as Record<string, JWT>
  // Any instance reads the cookie the same way.
  const reader = instances[(keys[0] as { kid: string }).kid] as JWT

  app.decorate('accessTokens', {
    ...createAccessTokenJwt(settings, instances),
    presented (request: FastifyRequest) {
      // Cookies are parsed only for requests that authenticate (see cookies.ts), and not when the
      // header speaks. Only a Bearer header is the service's: another scheme (Basic, Negotiate)
      // is one a browser attaches by itself behind HTTP authentication, beside the cookies that
      // authenticate it (regression: every call of a console behind Basic was refused).
      if (presentsBearer(request)) {
        const token = BEARER.exec(request.headers.authorization ?? '')?.[1]
        if (token === undefined) throw apiError('AUTH_TOKEN_INVALID')
        request.cookies ??= {}
        return token
      }
      request.cookies ??= app.parseCookie(request.headers.cookie ?? '')
      try {
        return reader.lookupToken(request, { onlyCookie: true })
      } catch {
        throw apiError('AUTH_REQUIRED')
      }
    }
  })
}

export const accessTokens = fp(accessTokensPlugin, { name: 'access-tokens', dependencies: ['cookies'] })
