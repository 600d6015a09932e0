// What the caller may do: route-level permission guards, decided from `request.caller.role`: the access token's role, or on the admin routes the database's (fresh-auth.ts's admin session check reads it first).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { presentsBearer } from './access-tokens.js'
import { isTrustedSource } from './cross-origin.js'
import { hasPermission, type Permission } from '../services/accounts/roles.js'
import type { Caller } from './authenticate.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preParsing guard, after `authenticate`: 403 FORBIDDEN unless the caller's role grants `permission`; 403 CSRF_REJECTED for cookies from another origin's page. */
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

export interface AuthorizeSettings {
  /** PUBLIC_URL: the one origin whose pages may use a caller's cookies for a permission (the console's). */
  ownOrigin: string
}

async function authorizePlugin (app: FastifyInstance, { ownOrigin }: AuthorizeSettings) {
  // The CSRF check's own rule (an `Origin`, else `Sec-Fetch-Site`), with the service's origin
  // alone trusted, and for reads too: an `<img>` or a `no-cors` fetch names no origin.
  const own = new Set([ownOrigin])
  const fromAnotherOriginByCookie = (request: FastifyRequest) => !presentsBearer(request) && !isTrustedSource(request, own)
  app.decorate('requirePermission', (permission: Permission) => async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    // CORS_ORIGINS lets the listed apps use a user's own session; a permission beyond it (the
    // admin API) is used with cookies only by the service's own pages, the console: else an
    // injected script in any listed app, on a browser where an admin is signed in to the
    // console, read and changed every account as that admin (SameSite=Lax sends the cookies
    // to a site's other origins). A Bearer token is no browser's by default, and passes.
    if (fromAnotherOriginByCookie(request)) throw apiError('CSRF_REJECTED')
    if (!hasPermission(request.caller.role, permission)) {
      logRefusal(request, request.caller, permission)
      throw apiError('FORBIDDEN')
    }
  })
}

export const authorize = fp(authorizePlugin, { name: 'authorize', dependencies: ['authenticate'] })
