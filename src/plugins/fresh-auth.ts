// Route guards that read the session's proofs: fresh authentication for sensitive changes, a second factor for admins.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import type { ReauthenticationService } from '../services/mfa/reauthentication.js'
import { permissionsByRole, type Role } from '../services/accounts/roles.js'

export interface FreshAuthSettings {
  reauthentication: ReauthenticationService
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Guard, after `authenticate`: 403 REAUTHENTICATION_REQUIRED (with `methods`) unless this session proved a password or factor within REAUTH_MAX_AGE_SECONDS. */
    requireFreshAuthentication: (request: FastifyRequest) => Promise<void>
    /** Guard, after `authenticate`: with REQUIRE_MFA_FOR_ADMINS, 403 MFA_ENROLMENT_REQUIRED for a session with admin permissions that has not proven a second factor. */
    requireAdminSecondFactor: (request: FastifyRequest) => Promise<void>
  }
}

/** A role that grants any permission is an administrative one (roles.ts holds the list). */
function isAdministrative (role: string): boolean {
  return Object.hasOwn(permissionsByRole, role) && permissionsByRole[role as Role].length > 0
}

async function freshAuthPlugin (app: FastifyInstance, { reauthentication }: FreshAuthSettings) {
  app.decorate('requireFreshAuthentication', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    await reauthentication.assertFresh(request.caller.userId, request.caller.sessionId)
  })

  app.decorate('requireAdminSecondFactor', async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    // Others get FORBIDDEN from the permission guard: the rule is about admins.
    if (!isAdministrative(request.caller.role)) return
    await reauthentication.assertAdminSecondFactor(request.caller.userId, request.caller.sessionId)
  })
}

export const freshAuth = fp(freshAuthPlugin, { name: 'fresh-auth', dependencies: ['authenticate'] })
