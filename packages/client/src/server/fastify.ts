// A Fastify plugin for resource servers: `onRequest: app.requireAccessToken` lets only a valid access token through.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { AccessClaims } from '../api-types.js'
import { AuthError, isAuthError } from '../errors.js'
import { createAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions } from './verifier.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** A hook: answers 401 (or 503) in the service's error shape unless the request carries a valid access token. */
    requireAccessToken: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** The verified claims, once `requireAccessToken` let the request through; null before. */
    accessClaims: AccessClaims | null
  }
}

export type AccessTokenPluginOptions = AccessTokenVerifierOptions | { verifier: AccessTokenVerifier }

// Tokens only in the Authorization header: never in a URL, where logs and Referer keep them.
// One or more spaces after the scheme, as the service takes it (RFC 9110 allows either).
const BEARER = /^Bearer +([A-Za-z0-9\-_.]+)$/i

async function accessTokenPlugin (app: FastifyInstance, options: AccessTokenPluginOptions): Promise<void> {
  const verifier = 'verifier' in options ? options.verifier : createAccessTokenVerifier(options)
  app.decorateRequest('accessClaims', null)

  app.decorate('requireAccessToken', async function requireAccessToken (request: FastifyRequest, reply: FastifyReply) {
    const header = request.headers.authorization
    try {
      if (header === undefined) throw new AuthError('AUTH_REQUIRED', 'Authentication is required', 401)
      const token = BEARER.exec(header)?.[1]
      if (token === undefined) throw new AuthError('AUTH_TOKEN_INVALID', 'The access token is invalid', 401)
      request.accessClaims = await verifier.verify(token)
    } catch (error) {
      // RFC 6750 3: a 401 names the scheme, and says why when a token was presented.
      if (isAuthError(error) && error.status === 401) reply.header('www-authenticate', header === undefined ? 'Bearer' : 'Bearer error="invalid_token"')
      throw error
    }
  })
}

/** Registers `app.requireAccessToken` and `request.accessClaims`, visible to the whole app. */
export const accessTokenAuth = fp(accessTokenPlugin, { name: 'auth-service-access-token', fastify: '5.x' })
