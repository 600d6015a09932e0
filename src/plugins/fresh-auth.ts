// Route guards that read the session's proofs: fresh authentication for sensitive changes, a second factor for admins.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import type { ReauthenticationService } from '../services/mfa/reauthentication.js'

export interface FreshAuthSettings {
  reauthentication: ReauthenticationService
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Guard, after `authenticate`: 403 REAUTHENTICATION_REQUIRED (with `methods`) unless this session proved a password or factor within REAUTH_MAX_AGE_SECONDS. */
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

async function freshAuthPlugin (app: FastifyInstance, { reauthentication }: FreshAuthSettings) {
  app.decorate('requireFreshAuthentication', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    await reauthentication.assertFresh(request.caller.userId, request.caller.sessionId)
  })

  // The token alone is not enough here: a revoked session, or an admin deactivated or demoted,
  // loses the admin API at once rather than when the access token expires.
  app.decorate('requireAdminSession', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    request.caller.role = await reauthentication.assertAdminSession(request.caller.userId, request.caller.sessionId)
  })
}

export const freshAuth = fp(freshAuthPlugin, { name: 'fresh-auth', dependencies: ['authenticate'] })
