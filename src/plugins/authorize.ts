// What the caller may do: route-level permission guards, decided from `request.caller.role`: the access token's role, or on the admin routes the database's (fresh-auth.ts's admin session check reads it first).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { hasPermission, type Permission } from '../services/accounts/roles.js'
import type { Caller } from './authenticate.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preParsing guard, after `authenticate`: 403 FORBIDDEN unless the caller's role grants `permission`. */
    requirePermission: (permission: Permission) => (request: FastifyRequest) => Promise<void>
  }
}

/**
 * A signed-in caller probing routes above their role is worth an operator's look, in the log
 * rather than the audit trail, which any account could otherwise fill. No address: the ids say who.
 */
function logRefusal (request: FastifyRequest, caller: Caller, permission: Permission): void {
  request.log.warn({ userId: caller.userId, sessionId: caller.sessionId, permission, route: `${request.method} ${request.routeOptions.url ?? ''}` }, 'permission refused')
}

async function authorizePlugin (app: FastifyInstance) {
  app.decorate('requirePermission', (permission: Permission) => async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    if (!hasPermission(request.caller.role, permission)) {
      logRefusal(request, request.caller, permission)
      throw apiError('FORBIDDEN')
    }
  })
}

export const authorize = fp(authorizePlugin, { name: 'authorize', dependencies: ['authenticate'] })
