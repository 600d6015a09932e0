// /auth/password/* and /auth/email/*: password change and reset, and email verification by mailed token.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { perClientIp, sharedBudgets } from '../plugins/rate-limits.js'
import { errorResponses, type PasswordPolicy, security } from '../schemas/common.js'
import { Accepted, ChangePasswordBody, EmptyBody, ForgotPasswordBody, ResetPasswordBody, VerifyEmailBody } from '../schemas/accounts.js'
import type { CredentialService } from '../services/passwords/credentials.js'
import type { EmailVerificationService } from '../services/accounts/email-verification.js'
import type { IdentifierKeys } from '../services/sessions/login-throttle.js'
import type { PasswordResetService } from '../services/passwords/password-reset.js'
import { absentBodyAsEmpty, actorOf, callerOf, noStore, type TypedRoutes } from './request-context.js'

export interface AccountRoutesOptions {
  credentials: CredentialService
  passwordReset: PasswordResetService
  emails: EmailVerificationService
  identifierKeys: IdentifierKeys
  passwordPolicy: PasswordPolicy
  limits: RateLimits
}

// Each mail-sending or token-taking route has its own per-ip limit; forgot also one per address, resend one per user and one per address (shared budgets, see rate-limits.ts).
export async function accountRoutes (app: FastifyInstance, { credentials, passwordReset, emails, identifierKeys, passwordPolicy, limits }: AccountRoutesOptions) {
  // The mailbox a reset is asked for, its +tags one (the body is validated by then).
  const forgotAccountKey = (request: FastifyRequest) => identifierKeys.mailbox((request.body as { email: string }).email)
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)
  const rateLimit = perClientIp(limits.mail)

  routes.post('/auth/password/change', {
    // Each try costs a password hash or two: limited as a login is.
    config: { rateLimit: perClientIp(limits.loginIp) },
    preParsing: [app.authenticate],
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags: ['auth'],
      operationId: 'changePassword',
      summary: 'Change the password; every other session ends',
      description: 'Needs the current password (403 `INVALID_CURRENT_PASSWORD`, counted toward the account\'s login backoff: 429 `RATE_LIMITED` while it lasts). The new one follows the registration policy. The calling session stays, but not the set-ups of an authenticator app or a passkey under way, on it or any other (begun with the old password); the owner is told by mail. Needs fresh authentication (403 `REAUTHENTICATION_REQUIRED`).',
      security,
      body: ChangePasswordBody(passwordPolicy),
      response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 415, 429) }
    }
  }, async (request, reply) => {
    await credentials.changePassword(actorOf(request), request.body.currentPassword, request.body.newPassword)
    return reply.code(204).send(null)
  })

  routes.post('/auth/password/forgot', {
    config: { rateLimit },
    // A mailbox cannot be flooded with reset mails from many addresses either.
    preHandler: [app.rateLimitBy('forgot-account', limits.mailAccount, forgotAccountKey, { sharedWithStrangers: true })],
    schema: {
      tags: ['auth'],
      operationId: 'forgotPassword',
      summary: 'Mail a password reset link',
      description: 'Always 202 with the same body, once the request is recorded and before the address is even looked up: it tells nothing about whether an account exists. The only other answers, 429 and 503 (the database is unavailable: nothing was recorded), depend on the address asked for, the client and the service, never on whether an account has it. An active account gets a single-use link that expires; asking again kills the earlier link. The mail, as it goes out, writes the audit entry password.reset_requested (with the client address), which the owner sees in GET /users/me/activity.',
      body: ForgotPasswordBody,
      response: { 202: Accepted, ...errorResponses(400, 415, 429) }
    }
  }, async (request, reply) => {
    await passwordReset.requestReset(request.body.email, request.ip)
    return reply.code(202).send({ message: 'If an account uses this address, a password reset link is on its way.' })
  })

  routes.post('/auth/password/reset', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      operationId: 'resetPassword',
      summary: 'Set a new password with a mailed reset token; every session ends',
      description: 'The token works once. Also marks the email address verified: the link proved control of the mailbox.',
      body: ResetPasswordBody(passwordPolicy),
      response: { 204: Type.Null(), ...errorResponses(400, 415, 429) }
    }
  }, async (request, reply) => {
    await passwordReset.reset(request.body.token, request.body.password, request.ip)
    return reply.code(204).send(null)
  })
  emailRoutes(routes, app, { emails, identifierKeys, limits }, rateLimit)
}

/** Verifying the address, and asking for the link again. */
function emailRoutes (routes: TypedRoutes, app: FastifyInstance, { emails, identifierKeys, limits }: Pick<AccountRoutesOptions, 'emails' | 'identifierKeys' | 'limits'>, rateLimit: ReturnType<typeof perClientIp>) {
  routes.post('/auth/email/verify', {
    config: { rateLimit },
    schema: {
      tags: ['auth'],
      operationId: 'verifyEmail',
      summary: 'Verify an email address with a mailed token',
      description: 'A registration token marks the address verified; an email-change token makes the pending address the account\'s email (409 `EMAIL_TAKEN` if another account took it meanwhile), while the session that asked for the change lives (`VERIFICATION_TOKEN_INVALID` once it has ended).',
      body: VerifyEmailBody,
      response: { 204: Type.Null(), ...errorResponses(400, 409, 415, 429) }
    }
  }, async (request, reply) => {
    await emails.verify(request.body.token, request.ip)
    return reply.code(204).send(null)
  })

  // The address is the service's to choose (the pending one, else the current one): it is
  // counted there, in the budget of mails to an address nobody has proven to hold yet.
  const recipientLimit = app.rateLimitKey(sharedBudgets.unprovenRecipient, limits.mailAccount, { sharedWithStrangers: true })
  routes.post('/auth/email/resend', {
    config: { rateLimit },
    preParsing: [app.authenticate],
    // One budget with the account's email changes: RATE_LIMIT_MAIL_ACCOUNT is per account, not per route.
    preHandler: [app.rateLimitBy(sharedBudgets.accountMail, limits.mailAccount, request => callerOf(request).userId)],
    preValidation: absentBodyAsEmpty,
    schema: {
      tags: ['auth'],
      operationId: 'resendVerificationEmail',
      summary: 'Mail a new verification link',
      description: 'To the pending address when an email change is pending (its link still working and the session that asked for it live: a change whose link or session ended has ended, and the address is cleared within the hour), else to the current address while unverified. A verified account with nothing pending gets no mail, and the same 202. Only the newest link works. Counts against RATE_LIMIT_MAIL per client, RATE_LIMIT_MAIL_ACCOUNT per user (one budget with the email changes) and, when a link is due, per address it goes to (one budget with the registrations and email changes naming that address) (429 `RATE_LIMITED`).',
      security,
      body: EmptyBody,
      response: { 202: Accepted, ...errorResponses(400, 401, 415, 429) }
    }
  }, async (request, reply) => {
    const caller = callerOf(request)
    await emails.resend(caller.userId, caller.sessionId, async address => { await recipientLimit(request, reply, identifierKeys.mailbox(address)) })
    return reply.code(202).send({ message: 'If the address needs verifying, a link is on its way.' })
  })
}
