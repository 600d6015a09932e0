// /users/me: the caller's own account.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { clientOf, perClientIp } from '../plugins/rate-limits.js'
import { authCookies, errorResponses, type PasswordPolicy, security } from '../schemas/common.js'
import { Me } from '../schemas/mfa.js'
import { DeleteMeBody, UpdateMeBody } from '../schemas/users.js'
import type { CredentialService } from '../services/passwords/credentials.js'
import type { UserService } from '../services/accounts/users.js'
import { actorOf, callerOf, noStore } from './request-context.js'

export interface UserRoutesOptions {
  users: UserService
  credentials: CredentialService
  passwordPolicy: PasswordPolicy
  limits: RateLimits
}

/**
 * What a change of the caller's account passes first. An email change hands the account's
 * recovery address to whoever holds the session: it needs fresh authentication, and mails both
 * addresses, so it counts as the mail routes do. A taken username is 409, which tells that the
 * name exists, as a registration's 409 does: trying other names than one's own counts as
 * registering does. Both per client and per user.
 */
function changeGuard (app: FastifyInstance, users: UserService, limits: RateLimits) {
  const emailChangeLimits = [
    app.rateLimitBy('email-change-ip', limits.mail, clientOf),
    app.rateLimitBy('email-change-account', limits.mailAccount, request => callerOf(request).userId)
  ]
  const usernameChangeLimits = [
    app.rateLimitBy('username-change-ip', limits.register, clientOf),
    app.rateLimitBy('username-change-account', limits.register, request => callerOf(request).userId)
  ]
  return async function guardChange (request: FastifyRequest<{ Body: Static<typeof UpdateMeBody> }>, reply: FastifyReply) {
    if (request.body.username !== undefined && await users.renames(callerOf(request).userId, request.body.username)) {
      for (const limit of usernameChangeLimits) await limit(request, reply)
    }
    if (request.body.email === undefined) return
    await app.requireFreshAuthentication(request)
    for (const limit of emailChangeLimits) await limit(request, reply)
  }
}

export async function userRoutes (app: FastifyInstance, { users, credentials, passwordPolicy, limits }: UserRoutesOptions) {
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

  const guardChange = changeGuard(app, users, limits)
  const updateMe = (operationId: string, summary: string) => ({
    schema: {
      tags: ['users'],
      operationId,
      summary,
      description: 'A new `email` stays in `pendingEmail` until confirmed through the link mailed to it; the current address is told. Sending the current address cancels a pending change. An address of another account is 409 `EMAIL_TAKEN`. Changing the email needs fresh authentication (403 `REAUTHENTICATION_REQUIRED`), and counts against RATE_LIMIT_MAIL per client and RATE_LIMIT_MAIL_ACCOUNT per user (429 `RATE_LIMITED`). A new `username` (409 `USERNAME_TAKEN` when another account has it) counts against RATE_LIMIT_REGISTER per client and per user, as registering does; one\'s own sent again does not. The profile fields count against neither.',
      security,
      body: UpdateMeBody,
      response: { 200: Type.Ref(Me), ...errorResponses(400, 401, 403, 409, 415) }
    },
    preHandler: guardChange
  })
  const handleUpdate = async (request: FastifyRequest<{ Body: Static<typeof UpdateMeBody> }>) => {
    const caller = callerOf(request)
    return users.updateMe(caller.userId, caller.sessionId, request.body)
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
      description: 'Needs the current password (403 `INVALID_CURRENT_PASSWORD`, counted toward the account\'s login backoff: 429 `RATE_LIMITED` while it lasts) and fresh authentication (403 `REAUTHENTICATION_REQUIRED`). The last active admin cannot delete their account (409 `LAST_ADMIN`).',
      security,
      body: DeleteMeBody(passwordPolicy),
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409, 415) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    await credentials.deleteAccount(actorOf(request), request.body.password)
    return reply.clearAuthCookies().code(204).send()
  })
}
