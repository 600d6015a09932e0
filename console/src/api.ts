// The admin API as the console calls it: typed from the service's schemas, sent through the client library (cookies, one refresh for all calls).
import type { Static } from '@sinclair/typebox'
import { AuthError, isAuthError, type AuthClient, type ReauthenticationMethod } from '../../packages/client/src/index.js'
import { errorFrom } from '../../packages/client/src/errors.js'
import type { AdminUser, AuditList, Settings, UserChanges, UserList } from '../../src/schemas/admin.js'
import type { SessionList } from '../../src/schemas/sessions.js'
import type { AuditAction } from '../../src/services/admin/audit-actions.js'
import type { Role } from '../../src/services/accounts/roles.js'

/** `mfaEnabled` is there once the service has second factors (docs/second-factor.md, Second factor). */
export type User = Static<typeof AdminUser> & { mfaEnabled?: boolean }
export type UserPage = Static<typeof UserList>
export type Sessions = Static<typeof SessionList>
export type AuditPage = Static<typeof AuditList>
export type Lifetimes = Static<typeof Settings>

export interface UserQuery { q?: string, match?: 'prefix' | 'exact', role?: Role, active?: boolean, cursor?: string, limit?: number }
export interface AuditQuery { subjectId?: string, action?: AuditAction, cursor?: string, limit?: number }

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

function withQuery (path: string, query: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== '') search.set(name, String(value))
  const text = search.toString()
  return text === '' ? path : `${path}?${text}`
}

const userPath = (id: string) => `/admin/users/${encodeURIComponent(id)}`

/** The proof a sensitive change asked for was not given (cancelled, or never asked: the admin had left): the change was not made. */
export class NotConfirmed extends Error {
  override readonly name = 'NotConfirmed'
  constructor (message = 'Cancelled: you did not confirm it is you, so nothing was changed.') {
    super(message)
  }
}

export interface AdminApiOptions {
  /**
   * Asked on 403 REAUTHENTICATION_REQUIRED (docs/second-factor.md, Second factor): true once the admin has
   * proven it is them with one of `methods` on this session, false when they cancelled.
   */
  confirmIdentity: (methods: ReauthenticationMethod[]) => Promise<boolean>
}

export function adminApi (client: AuthClient, { confirmIdentity }: AdminApiOptions) {
  async function send<T> (method: Method, path: string, body?: unknown): Promise<T> {
    const init: RequestInit = body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
    const response = await client.fetch(path, init)
    // The client library's reading of a refusal: the service's code and message, Retry-After and the methods of a reauthentication.
    if (!response.ok) throw await errorFrom(response)
    return (response.status === 204 ? undefined : await response.json().catch(() => undefined)) as T
  }

  /** Sent again once after the admin proves it is them; a refusal of that try is the call's answer, so there is no loop. */
  async function call<T> (method: Method, path: string, body?: unknown): Promise<T> {
    const sentFrom = location.hash
    try {
      return await send<T>(method, path, body)
    } catch (error) {
      if (!isAuthError(error, 'REAUTHENTICATION_REQUIRED')) throw error
      // Refused after the admin left the screen it was sent from: nothing is asked, nothing
      // sent again (regression: the question opened over the next screen, and the change was made unseen).
      if (location.hash !== sentFrom) throw new NotConfirmed('Not changed: it needed you to confirm it is you, and you had left its screen. Go back to it to try again.')
      // The service lists the methods; an older one that did not still takes the password.
      if (!await confirmIdentity(error.methods ?? ['password'])) throw new NotConfirmed()
      return await send<T>(method, path, body)
    }
  }

  return {
    users: (query: UserQuery) => call<UserPage>('GET', withQuery('/admin/users', { ...query })),
    user: (id: string) => call<User>('GET', userPath(id)),
    update: (id: string, changes: Static<typeof UserChanges>) => call<User>('PATCH', userPath(id), changes),
    remove: (id: string) => call<void>('DELETE', userPath(id)),
    sessions: (id: string, cursor?: string) => call<Sessions>('GET', withQuery(`${userPath(id)}/sessions`, { limit: 100, cursor })),
    revokeSession: (id: string, sessionId: string) => call<void>('DELETE', `${userPath(id)}/sessions/${encodeURIComponent(sessionId)}`),
    revokeSessions: (id: string) => call<void>('POST', `${userPath(id)}/sessions/revoke`),
    sendPasswordReset: (id: string) => call<{ message: string }>('POST', `${userPath(id)}/password-reset`),
    /** Every second factor of the user goes, their sessions end, they are told by mail. */
    removeSecondFactors: (id: string) => call<void>('DELETE', `${userPath(id)}/mfa`),
    settings: () => call<Lifetimes>('GET', '/admin/settings'),
    updateSettings: (changes: Partial<Lifetimes>) => call<Lifetimes>('PUT', '/admin/settings', changes),
    audit: (query: AuditQuery) => call<AuditPage>('GET', withQuery('/admin/audit', { ...query }))
  }
}

export type AdminApi = ReturnType<typeof adminApi>

/** What to tell the admin about a failed call: the service's own message (LAST_ADMIN, USER_INACTIVE…), or why none came. */
export function problemOf (error: unknown): string {
  if (error instanceof NotConfirmed) return error.message
  if (error instanceof AuthError) {
    if (error.code === 'NETWORK_ERROR' || error.code === 'TIMEOUT') return 'The service could not be reached. Check the connection and try again.'
    if (error.code === 'RATE_LIMITED') return `Too many requests; try again in ${error.retryAfterSeconds ?? 60} seconds.`
    if (error.code === 'REAUTHENTICATION_REQUIRED') return 'This change needs you to confirm it is you. Try again.'
    if (error.code === 'SESSION_CHANGED') return 'You signed in or out elsewhere meanwhile, so nothing was changed. Reload the page to see who is signed in.'
    return error.message
  }
  return 'Something went wrong.'
}

/**
 * A 401: the session is over, and the client library has already said so (see main.ts). Not
 * SESSION_CHANGED: another session holds the cookies now, and the admin is told (problemOf).
 */
export const isSignedOut = (error: unknown): boolean => error instanceof AuthError && error.status === 401 && error.code !== 'SESSION_CHANGED'
