// Route guards that read the session: still live, freshly authenticated for sensitive changes, a second factor for admins.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import type { ReauthenticationService } from '../services/mfa/reauthentication.js'
import type { SessionService } from '../services/sessions/sessions.js'

export interface FreshAuthSettings {
  reauthentication: ReauthenticationService
  sessions: Pick<SessionService, 'isLive'>
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Guard, after `authenticate`, of the routes that read or change the caller's account
     * without checking the session in their own query: 401 AUTH_SESSION_REVOKED once the
     * session has ended, rather than when its access token expires.
     */
    requireLiveSession: (request: FastifyRequest) => Promise<void>
    /** Guard, after `authenticate`: 403 REAUTHENTICATION_REQUIRED (with `methods`) unless this session's user authenticated within REAUTH_MAX_AGE_SECONDS and the access token is the one that authentication answered. */
    requireFreshAuthentication: (request: FastifyRequest) => Promise<void>
    /**
     * Guard of the admin API, after `authenticate`: the session must still be live (else 401
     * AUTH_SESSION_REVOKED) and the caller's role is read again from the database; with
     * REQUIRE_MFA_FOR_ADMINS, 403 MFA_ENROLMENT_REQUIRED for an admin session that has not
     * proven a second factor.
     */
    requireAdminSession: (request: FastifyRequest) => Promise<void>
  }
}

async function freshAuthPlugin (app: FastifyInstance, { reauthentication, sessions }: FreshAuthSettings) {
  app.decorate('requireLiveSession', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    if (!await sessions.isLive(request.caller.userId, request.caller.sessionId)) throw apiError('AUTH_SESSION_REVOKED')
  })

  app.decorate('requireFreshAuthentication', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    const { userId, sessionId, claims } = request.caller
    await reauthentication.assertFresh({ userId, sessionId, tokenId: claims.jti, authTime: claims.auth_time })
  })

  // The token alone is not enough here: a revoked session, or an admin deactivated or demoted,
  // loses the admin API at once rather than when the access token expires.
  app.decorate('requireAdminSession', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    request.caller.role = await reauthentication.assertAdminSession(request.caller.userId, request.caller.sessionId)
  })
}

export const freshAuth = fp(freshAuthPlugin, { name: 'fresh-auth', dependencies: ['authenticate'] })
