// /users/me: the caller's own account, and what happened to it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { clientOf } from '../plugins/client-address.js'
import { perClientIp, sharedBudgets } from '../plugins/rate-limits.js'
import { authCookies, errorResponses, type PasswordPolicy, security } from '../schemas/common.js'
import { Me } from '../schemas/mfa.js'
import { ListQuery } from '../schemas/sessions.js'
import { ActivityList, DeleteMeBody, UpdateMeBody } from '../schemas/users.js'
import type { AuditService } from '../services/admin/audit.js'
import type { CheckedPassword } from '../services/passwords/checked-password.js'
import type { CredentialService } from '../services/passwords/credentials.js'
import type { UserService } from '../services/accounts/users.js'
import type { IdentifierKeys } from '../services/sessions/login-throttle.js'
import { apiError, missingPasswordForNewEmail } from '../errors.js'
import { actorOf, callerOf, clearCallerCookies, noStore, type TypedRoutes } from './request-context.js'

type UpdateMe = Static<ReturnType<typeof UpdateMeBody>>

export interface UserRoutesOptions {
  users: UserService
  audit: Pick<AuditService, 'ownActivity'>
  credentials: CredentialService
  identifierKeys: IdentifierKeys
  passwordPolicy: PasswordPolicy
  limits: RateLimits
}

/**
 * What a change of the caller's account passes first. An email change hands the account's
 * recovery address to whoever holds the session: it needs fresh authentication and the current
 * password (a login's own token is fresh: credentials.ts, assertCurrentPassword), and mails both
 * addresses, so it counts as the mail routes do, per client and in the account's mail budget;
 * the new address has proven nothing, so the change counts in its budget too, shared with
 * registrations and resent links. The password is checked after the per-client budget, which
 * bounds the hashing, and before the others: a wrong one spends none of the owner's. A taken
 * username or email is 409, which tells that it exists, as a registration's 409 does: trying
 * other names or addresses than one's own counts in the registration's budget per client, and a
 * username change per user too (an email change is already held to the stricter mail budget per
 * user). Sending one's own address cancels a pending change: it mails nobody and tells nothing,
 * and spends none of these budgets (a stranger spending the address's must not keep its owner
 * from cancelling). A password sent with it is checked all the same: it is what lets the change
 * go on if the address moved meanwhile (see UserService.updateMe).
 */
function changeGuard (app: FastifyInstance, { users, credentials, identifierKeys, limits }: Pick<UserRoutesOptions, 'users' | 'credentials' | 'identifierKeys' | 'limits'>, checkedPasswords: WeakMap<FastifyRequest, CheckedPassword>) {
  const emailChangeIpLimit = app.rateLimitBy('email-change-ip', limits.mail, clientOf)
  const accountMailLimit = app.rateLimitBy(sharedBudgets.accountMail, limits.mailAccount, request => callerOf(request).userId)
  const usernameChangeLimit = app.rateLimitBy('username-change-account', limits.register, request => callerOf(request).userId)
  const probeLimit = app.rateLimitBy(sharedBudgets.existenceProbes, limits.register, clientOf)
  const recipientLimit = app.rateLimitBy(sharedBudgets.unprovenRecipient, limits.mailAccount, request => identifierKeys.mailbox((request.body as { email: string }).email), { sharedWithStrangers: true })
  return async function guardChange (request: FastifyRequest<{ Body: UpdateMe }>, reply: FastifyReply) {
    const { username, email, currentPassword } = request.body
    // Never taken and ignored: a client that sends it must not believe a change was checked that was not.
    if (currentPassword !== undefined && email === undefined) throw apiError('VALIDATION_FAILED', 'body property \'currentPassword\' goes only with \'email\'')
    const changes = await users.changesOf(callerOf(request).userId, { username, email })
    if (changes.username) await usernameChangeLimit(request, reply)
    if (email !== undefined) await app.requireFreshAuthentication(request)
    if (changes.email && currentPassword === undefined) throw missingPasswordForNewEmail()
    if (changes.email || currentPassword !== undefined) await emailChangeIpLimit(request, reply)
    if (currentPassword !== undefined) checkedPasswords.set(request, await credentials.assertCurrentPassword(actorOf(request), currentPassword, 'email_change'))
    if (changes.email) await accountMailLimit(request, reply)
    // Once per request, however many of its fields could tell.
    if (changes.username || changes.email) await probeLimit(request, reply)
    if (changes.email) await recipientLimit(request, reply)
  }
}

export async function userRoutes (app: FastifyInstance, { users, audit, credentials, identifierKeys, passwordPolicy, limits }: UserRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('preParsing', app.authenticate)
  routes.addHook('onSend', noStore)

  routes.get('/users/me', {
    schema: {
      tags: ['users'],
      operationId: 'getMe',
      summary: 'The caller, their profile and their second factors',
      security,
      response: { 200: Type.Ref(Me), ...errorResponses(401) }
    }
  }, async request => {
    const caller = callerOf(request)
    return users.me(caller.userId, caller.sessionId)
  })

  activityRoute(routes, app, audit)

  // The password each change's guard checked, for the change to confirm under the user's row.
  const checkedPasswords = new WeakMap<FastifyRequest, CheckedPassword>()
  const guardChange = changeGuard(app, { users, credentials, identifierKeys, limits }, checkedPasswords)
  const updateMe = (operationId: string, summary: string) => ({
    schema: {
      tags: ['users'],
      operationId,
      summary,
      description: 'A new `email` stays in `pendingEmail` until confirmed through the link mailed to it, and lives no longer than the session that asked for it (its end, a logout included, ends the change: its link is refused); the current address is told when it was proven. Sending the current address cancels a pending change. An address of another account is 409 `EMAIL_TAKEN`. Changing the email needs fresh authentication (403 `REAUTHENTICATION_REQUIRED`) and the current password, `currentPassword` (400 `VALIDATION_FAILED` without it, or with it but no `email`; 403 `INVALID_CURRENT_PASSWORD`, counted toward the account\'s login backoff, 429 while it lasts: a login\'s own token is fresh, and must not be enough to move the address a reset mails), and counts against RATE_LIMIT_MAIL per client, RATE_LIMIT_MAIL_ACCOUNT per user (one budget with POST /auth/email/resend) and per new address (one budget with the registrations and resent links to it, whatever account asks), and RATE_LIMIT_REGISTER per client (one budget with registrations and username changes: a 409 tells that an address exists) (429 `RATE_LIMITED`). A new `username` (409 `USERNAME_TAKEN` when another account has it, or when it is kept for the operator\'s accounts: `admin`, `support` and the like, which only an admin may take) counts against RATE_LIMIT_REGISTER per client, in that same budget, and per user; one\'s own sent again does not. The profile fields count against none.',
      security,
      body: UpdateMeBody(passwordPolicy),
      response: { 200: Type.Ref(Me), ...errorResponses(400, 401, 403, 409, 415, 429) }
    },
    preHandler: guardChange
  })
  const handleUpdate = async (request: FastifyRequest<{ Body: UpdateMe }>) => {
    const { currentPassword: _checkedByTheGuard, ...changes } = request.body
    return users.updateMe(actorOf(request), changes, checkedPasswords.get(request))
  }
  routes.patch('/users/me', updateMe('updateMe', 'Change username, email or profile fields'), handleUpdate)
  routes.put('/users/me', updateMe('replaceMe', 'Alias of PATCH /users/me'), handleUpdate)

  routes.delete('/users/me', {
    // Each try costs a password hash: limited as a login is.
    config: { rateLimit: perClientIp(limits.loginIp) },
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags: ['users'],
      operationId: 'deleteMe',
      summary: 'Delete the account, its profile and sessions; clears the cookies',
      description: 'Needs the current password (403 `INVALID_CURRENT_PASSWORD`, counted toward the account\'s login backoff: 429 `RATE_LIMITED` while it lasts) and fresh authentication (403 `REAUTHENTICATION_REQUIRED`). The last active admin cannot delete their account (409 `LAST_ADMIN`). A proven address is mailed that the account was deleted.',
      security,
      body: DeleteMeBody(passwordPolicy),
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409, 415) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    await credentials.deleteAccount(actorOf(request), request.body.password)
    return clearCallerCookies(request, reply).code(204).send()
  })
}

/** The audit trail's entries about the caller (see AuditService.ownActivity). */
function activityRoute (routes: TypedRoutes, app: FastifyInstance, audit: Pick<AuditService, 'ownActivity'>) {
  routes.get('/users/me/activity', {
    preHandler: [app.requireLiveSession],
    schema: {
      tags: ['users'],
      operationId: 'getMyActivity',
      summary: 'What happened to the caller\'s account, newest first',
      description: 'The audit trail\'s entries about the caller, kept for AUDIT_RETENTION_DAYS: sign-ins and failed ones (someone who tried a wrong password shows here, with the address it came from; one who had the password and stopped at the second step too, with the notice mailed of it), the password resets asked for (each as its mail went out, with the address that asked), changes of the password, the address, the factors and the sessions, by the caller, by an admin (named by role only) or by nobody signed in. `action` is one of the audit actions; `details` is the entry\'s, as `GET /admin/audit` shows it. Paged as `GET /auth/sessions`.',
      security,
      querystring: ListQuery,
      response: { 200: ActivityList, ...errorResponses(400, 401) }
    }
  }, async request => audit.ownActivity(callerOf(request).userId, request.query))
}
