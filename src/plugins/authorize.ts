// What the caller may do: route-level permission guards, decided from `request.caller.role`: the access token's role, or on the admin routes the database's (fresh-auth.ts's admin session check reads it first).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { hasPermission, type Permission } from '../services/accounts/roles.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preParsing guard, after `authenticate`: 403 FORBIDDEN unless the caller's role grants `permission`. */
    requirePermission: (permission: Permission) => (request: FastifyRequest) => Promise<void>
  }
}

async function authorizePlugin (app: FastifyInstance) {
  app.decorate('requirePermission', (permission: Permission) => async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    if (!hasPermission(request.caller.role, permission)) throw apiError('FORBIDDEN')
  })
}

export const authorize = fp(authorizePlugin, { name: 'authorize', dependencies: ['authenticate'] })
