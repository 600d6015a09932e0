// /admin: users, their sessions, runtime settings and the audit trail; every route guarded by a permission.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RateLimit } from '../config-derived.js'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { EmptyBody } from '../schemas/accounts.js'
import { authCookies, DISOWNED_SESSION, errorResponses, needsFreshAuthentication, security } from '../schemas/common.js'
import { AdminUser, AuditList, AuditQuery, ResetMailSent, Settings, SettingsChanges, UserChanges, UserList, UserListQuery, UserParams, UserSessionParams } from '../schemas/admin.js'
import { ListQuery, SessionList } from '../schemas/sessions.js'
import type { AdminService } from '../services/admin/users.js'
import type { AuditService } from '../services/admin/audit.js'
import type { FactorService } from '../services/mfa/factors.js'
import type { ReauthenticationService } from '../services/mfa/reauthentication.js'
import type { Permission } from '../services/accounts/roles.js'
import { adminActors, type AdminActor } from '../services/admin/admin-actor.js'
import type { SettingsService } from '../services/admin/settings.js'
import { absentBodyAsEmpty, actorOf, callerOf, clearCallerCookies, noStore, type TypedRoutes } from './request-context.js'

export interface AdminRoutesOptions {
  admin: AdminService
  audit: AuditService
  factors: FactorService
  settings: SettingsService
  reauthentication: Pick<ReauthenticationService, 'assertAdminSession' | 'assertFresh'>
  /** RATE_LIMIT_MAIL_ACCOUNT: reset mails an admin may have sent to one user. */
  mailAccountLimit: RateLimit
}

const tags = ['admin']

export async function adminRoutes (app: FastifyInstance, { admin, audit, settings, factors, reauthentication, mailAccountLimit }: AdminRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('preParsing', app.authenticate)
  // The whole admin API, before any route's own permission guard: the session is live and the
  // role current. REQUIRE_MFA_FOR_ADMINS applies here; the enrolment routes are under
  // /auth/mfa, outside this scope, so an admin can always reach them.
  routes.addHook('preParsing', app.requireAdminSession)
  routes.addHook('onSend', noStore)
  const can = app.requirePermission
  // ASVS 3.7.1, as for the caller's own credentials: whoever holds an admin's cookie or an
  // unlocked console must not keep access by promoting an account of their own, removing a
  // victim's factors or stretching token lifetimes. Sign-outs and reset mails stay without it:
  // they only take access away, or mail the user's own mailbox, and an admin must apply them fast.
  const fresh = app.requireFreshAuthentication
  // The guards above ran as the headers came in; every change checks its caller again as it commits.
  const adminActor = adminActors(reauthentication)
  const actor = (request: FastifyRequest, permission: Permission, fresh = false) =>
    adminActor({ ...actorOf(request), tokenId: callerOf(request).claims.jti, authTime: callerOf(request).claims.auth_time }, permission, { fresh })
  userRoutes(routes, can, fresh, actor, admin)
  userCredentialRoutes(routes, can, fresh, actor, admin, factors)
  userSessionRoutes(routes, can, actor, admin)
  passwordResetRoute(routes, can, actor, admin, app.rateLimitBy('admin-reset-account', mailAccountLimit, request => (request.params as { id: string }).id))
  settingsAndAuditRoutes(routes, can, fresh, actor, settings, audit)
}

type Can = FastifyInstance['requirePermission']
type Fresh = FastifyInstance['requireFreshAuthentication']
/** The caller as an admin acting with `permission` (and fresh authentication, on the routes that ask it), to be confirmed in the change's transaction. */
type Actor = (request: FastifyRequest, permission: Permission, fresh?: boolean) => AdminActor

/** Listing, reading, changing and deleting users. */
function userRoutes (routes: TypedRoutes, can: Can, fresh: Fresh, actor: Actor, admin: AdminService) {
  routes.get('/admin/users', {
    preParsing: [can('users:read')],
    schema: {
      tags,
      security,
      operationId: 'adminListUsers',
      summary: 'Users, newest first, with search and filters',
      querystring: UserListQuery,
      response: { 200: UserList, ...errorResponses(400, 401, 403) }
    }
  }, async request => admin.list(request.query))

  routes.get('/admin/users/:id', {
    preParsing: [can('users:read')],
    schema: { tags, security, operationId: 'adminGetUser', summary: 'One user', params: UserParams, response: { 200: Type.Ref(AdminUser), ...errorResponses(400, 401, 403, 404) } }
  }, async request => admin.get(request.params.id))

  routes.patch('/admin/users/:id', {
    // Every change, the profile's too: one rule an admin can predict, and the console asks once.
    preParsing: [can('users:write'), fresh],
    schema: {
      tags,
      security,
      operationId: 'adminUpdateUser',
      summary: 'Change role, activate or deactivate (ends every session), rename, edit the profile',
      description: `The last active admin can be neither demoted nor deactivated (409 LAST_ADMIN). An account whose address was never proven is not made admin (409 USER_UNVERIFIED): anyone can register an address. A new username taken by another account is 409 USERNAME_TAKEN; one kept for the operator's accounts may be given (renaming is how an account that should no longer hold one, a demoted admin's, gives it up). A role change reaches the access token at its next refresh. Deactivating ends every session; like a new password, it also ends a staged email change with its link, the reset links, the login challenges and the set-ups of an authenticator app or a passkey under way. ${needsFreshAuthentication} Every change does, a profile edit included.`,
      params: UserParams,
      body: UserChanges,
      response: { 200: Type.Ref(AdminUser), ...errorResponses(400, 401, 403, 404, 409) }
    }
  }, async request => admin.update(actor(request, 'users:write', true), request.params.id, request.body))

  routes.delete('/admin/users/:id', {
    preValidation: absentBodyAsEmpty,
    preParsing: [can('users:write'), fresh],
    schema: {
      tags,
      security,
      operationId: 'adminDeleteUser',
      summary: 'Delete a user with their profile, sessions and tokens',
      description: `The last active admin cannot be deleted (409 LAST_ADMIN). A user whose address was proven is mailed that an administrator deleted the account. ${needsFreshAuthentication}`,
      params: UserParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 409) }
    }
  }, async (request, reply) => {
    await admin.remove(actor(request, 'users:write', true), request.params.id)
    return reply.code(204).send(null)
  })
}

/** Ending a user's second factors, or all their sessions. */
function userCredentialRoutes (routes: TypedRoutes, can: Can, fresh: Fresh, actor: Actor, admin: AdminService, factors: FactorService) {
  routes.delete('/admin/users/:id/mfa', {
    preValidation: absentBodyAsEmpty,
    preParsing: [can('users:write'), fresh],
    schema: {
      tags,
      security,
      operationId: 'adminRemoveMfa',
      summary: 'Remove every second factor of a user, end their sessions and tell them by mail',
      description: `For a user who lost their authenticator and their recovery codes. Idempotent: a user without a second factor is left as is (a TOTP setup never confirmed is none). Audited. When it removes one, like a new password it also ends a staged email change with its link, the reset links, the login challenges and the set-ups of an authenticator app or a passkey under way. ${needsFreshAuthentication}`,
      params: UserParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) }
    }
  }, async (request, reply) => {
    await factors.removeAllByAdmin(actor(request, 'users:write', true), request.params.id)
    return reply.code(204).send(null)
  })

  routes.post('/admin/users/:id/sessions/revoke', {
    preValidation: absentBodyAsEmpty,
    preParsing: [can('sessions:revoke')],
    schema: {
      tags,
      security,
      operationId: 'adminRevokeSessions',
      summary: 'End every session of a user',
      description: 'Audited. Like a new password, it also ends a staged email change with its link, the reset links, the login challenges and the set-ups of an authenticator app or a passkey under way. Ending one\'s own sessions signs the admin out: the cookies are cleared. Needs no fresh authentication: it only takes access away, and an admin must be able to apply it at once.',
      params: UserParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    await admin.revokeSessions(actor(request, 'sessions:revoke'), request.params.id)
    if (request.params.id === callerOf(request).userId) clearCallerCookies(request, reply)
    return reply.code(204).send(null)
  })
}

/** A user's sessions, one by one. */
function userSessionRoutes (routes: TypedRoutes, can: Can, actor: Actor, admin: AdminService) {
  routes.get('/admin/users/:id/sessions', {
    preParsing: [can('users:read')],
    schema: {
      tags,
      security,
      operationId: 'adminListUserSessions',
      summary: "A user's live sessions (device, ip, created, last used), most recently used first",
      description: '`current` marks the session making the request, when an admin looks at their own sessions. Paged as GET /auth/sessions.',
      params: UserParams,
      querystring: ListQuery,
      response: { 200: SessionList, ...errorResponses(400, 401, 403, 404) }
    }
  }, async request => admin.sessionsOf(request.params.id, callerOf(request).sessionId, request.query))

  routes.delete('/admin/users/:id/sessions/:sessionId', {
    preValidation: absentBodyAsEmpty,
    preParsing: [can('sessions:revoke')],
    schema: {
      tags,
      security,
      operationId: 'adminRevokeUserSession',
      summary: 'End one session of a user',
      description: `A session of another user, an ended or expired one or an unknown one is 404. Ending the calling session signs the admin out: the cookies are cleared. ${DISOWNED_SESSION} Needs no fresh authentication: it only takes access away.`,
      params: UserSessionParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    await admin.revokeSession(actor(request, 'sessions:revoke'), request.params.id, request.params.sessionId)
    // An admin ending their own session here is signed out, as with DELETE /auth/sessions/:id.
    if (request.params.sessionId === callerOf(request).sessionId) clearCallerCookies(request, reply)
    return reply.code(204).send(null)
  })
}

/** A reset of a user's password, by mail. */
function passwordResetRoute (routes: TypedRoutes, can: Can, actor: Actor, admin: AdminService, limitPerUser: ReturnType<FastifyInstance['rateLimitBy']>) {
  routes.post('/admin/users/:id/password-reset', {
    preValidation: absentBodyAsEmpty,
    preParsing: [can('users:write')],
    // Per user, whichever admin asks: a mailbox is not flooded through the admin API either.
    preHandler: [limitPerUser],
    schema: {
      tags,
      security,
      operationId: 'adminSendPasswordReset',
      summary: 'Mail the user a password reset link',
      description: 'The mail leaves through the outbox, as with POST /auth/password/forgot: a single-use link that expires, and earlier links die. A deactivated account is 409 USER_INACTIVE. At most RATE_LIMIT_MAIL_ACCOUNT mails per user, whichever admin asks (429 RATE_LIMITED). Needs no fresh authentication: the link goes to the user\'s own mailbox, never to the admin.',
      params: UserParams,
      body: EmptyBody,
      response: { 202: ResetMailSent, ...errorResponses(400, 401, 403, 404, 409, 429) }
    }
  }, async (request, reply) => {
    await admin.sendPasswordReset(actor(request, 'users:write'), request.params.id)
    return reply.code(202).send({ message: 'A password reset link is on its way.' })
  })
}

/** Runtime settings and the audit trail. */
function settingsAndAuditRoutes (routes: TypedRoutes, can: Can, fresh: Fresh, actor: Actor, settings: SettingsService, audit: AuditService) {
  routes.get('/admin/settings', {
    preParsing: [can('settings:read')],
    schema: { tags, security, operationId: 'adminGetSettings', summary: 'Token lifetimes in force', response: { 200: Settings, ...errorResponses(401, 403) } }
  }, async () => settings.tokenLifetimes())

  routes.put('/admin/settings', {
    preParsing: [can('settings:write'), fresh],
    schema: {
      tags,
      security,
      operationId: 'adminUpdateSettings',
      summary: 'Change token lifetimes (partial); applies to tokens issued afterwards on every instance',
      description: `Applies at once on this instance and within SETTINGS_REFRESH_SECONDS (5 s by default) on the others; no restart. ${needsFreshAuthentication}`,
      body: SettingsChanges,
      response: { 200: Settings, ...errorResponses(400, 401, 403, 415) }
    }
  }, async request => await settings.update(actor(request, 'settings:write', true), request.body))

  routes.get('/admin/audit', {
    preParsing: [can('audit:read')],
    schema: {
      tags,
      security,
      operationId: 'adminListAudit',
      summary: 'Security events and admin actions, newest first',
      querystring: AuditQuery,
      response: { 200: AuditList, ...errorResponses(400, 401, 403) }
    }
  }, async request => audit.list(request.query))
}
