// What the caller may do: route-level permission guards, decided from `request.caller.role`: the access token's role, or on the admin routes the database's (fresh-auth.ts's admin session check reads it first).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { presentsBearer } from './access-tokens.js'
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

/**
 * Whether a cookie-authenticated call comes from a page of another origin than the service's
 * own: its `Origin` (a cross-origin `fetch` names it, reads included), or, without one, its
 * `Sec-Fetch-Site` (an `<img>`, a `no-cors` fetch, a navigation name no origin; a same-origin
 * read names neither, or `same-origin`).
 */
function fromAnotherOriginByCookie (request: FastifyRequest, ownOrigin: string): boolean {
  if (presentsBearer(request)) return false
  const origin = request.headers.origin
  if (origin !== undefined) return origin !== ownOrigin
  const site = request.headers['sec-fetch-site']
  return site === 'same-site' || site === 'cross-site'
}

async function authorizePlugin (app: FastifyInstance, { ownOrigin }: AuthorizeSettings) {
  app.decorate('requirePermission', (permission: Permission) => async (request: FastifyRequest) => {
    if (request.caller === null) throw apiError('AUTH_REQUIRED')
    // CORS_ORIGINS lets the listed apps use a user's own session; a permission beyond it (the
    // admin API) is used with cookies only by the service's own pages, the console: else an
    // injected script in any listed app, on a browser where an admin is signed in to the
    // console, read and changed every account as that admin (SameSite=Lax sends the cookies
    // to a site's other origins). A Bearer token is no browser's by default, and passes.
    if (fromAnotherOriginByCookie(request, ownOrigin)) throw apiError('CSRF_REJECTED')
    if (!hasPermission(request.caller.role, permission)) {
      logRefusal(request, request.caller, permission)
      throw apiError('FORBIDDEN')
    }
  })
}

export const authorize = fp(authorizePlugin, { name: 'authorize', dependencies: ['authenticate'] })
