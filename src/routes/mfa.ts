// The caller's own second factor (/auth/mfa/totp*, /auth/mfa/recovery-codes) and fresh authentication (/auth/reauthenticate); the login's second step is with the login, in auth.ts.
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { presentsBearer } from '../plugins/access-tokens.js'
import { perClientIp } from '../plugins/rate-limits.js'
import { CurrentPasswordBody, EmptyBody } from '../schemas/accounts.js'
import { authCookies, errorResponses, needsCurrentPassword, needsFreshAuthentication, needsProvenAddress, type PasswordPolicy, security } from '../schemas/common.js'
import { ReauthenticateBody, ReauthenticatedBodyResponse, ReauthenticatedCookieResponse, RecoveryCodes, TotpConfirmBody, TotpEnrolment } from '../schemas/mfa.js'
import type { Services } from '../services/index.js'
import { TOTP_ENROLMENT_TTL_SECONDS } from '../services/mfa/factors.js'
import { absentBodyAsEmpty, actorOf, callerOf, noStore, type TypedRoutes } from './request-context.js'

export type MfaRoutesOptions = Pick<Services, 'factors' | 'reauthentication' | 'credentials'> & { passwordPolicy: PasswordPolicy, limits: RateLimits }

const tags = ['mfa']
const enrolmentLifetime = `${TOTP_ENROLMENT_TTL_SECONDS / 60} minutes`

export async function mfaRoutes (app: FastifyInstance, { factors, reauthentication, credentials, passwordPolicy, limits }: MfaRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('preParsing', app.authenticate)
  routes.addHook('onSend', noStore)
  // Codes are guessable one million at a time: every route that checks one is limited like login.
  const rateLimit = perClientIp(limits.loginIp)

  routes.post('/auth/mfa/totp', {
    // Each start checks a password, makes a secret, seals it, draws its QR code and writes an audit entry.
    config: { rateLimit },
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'enrolTotp',
      summary: 'Start setting up an authenticator app',
      description: `A new secret for an unconfirmed factor (replacing an earlier unconfirmed one), its otpauth URI and QR code. Nothing changes at login until POST /auth/mfa/totp/confirm, which must come within ${enrolmentLifetime}; DELETE /auth/mfa/totp cancels it. 409 \`MFA_ALREADY_ENABLED\` when one is set up. ${needsCurrentPassword} ${needsProvenAddress} ${needsFreshAuthentication}`,
      body: CurrentPasswordBody(passwordPolicy),
      response: { 200: TotpEnrolment, ...errorResponses(400, 401, 403, 409, 415, 429) }
    }
  }, async request => {
    const password = await credentials.assertCurrentPassword(actorOf(request), request.body.currentPassword, 'totp_setup')
    return await factors.enrolTotp(actorOf(request), password)
  })

  routes.post('/auth/mfa/totp/confirm', {
    config: { rateLimit },
    // An ended session learns nothing of the factor, and its wrong codes are not audited.
    preHandler: [app.requireLiveSession],
    schema: {
      tags,
      security,
      operationId: 'confirmTotp',
      summary: 'Finish setting up the authenticator app with its first code',
      description: `From now on login asks for a code. Answers ten recovery codes, shown this once (any earlier set, made with a passkey, stops working). 400 \`MFA_CODE_INVALID\` for a wrong code; 409 \`MFA_ENROLMENT_NOT_STARTED\` when no enrolment is under way: never started, cancelled, or started more than ${enrolmentLifetime} ago (start again); 409 \`MFA_ALREADY_ENABLED\`; 403 \`EMAIL_NOT_VERIFIED\` on an unverified address. A wrong code counts toward the account's login backoff, as at login and reauthentication: 429 \`RATE_LIMITED\` with \`Retry-After\` while the account must wait (its logins wait too). The owner is told by mail.`,
      body: TotpConfirmBody,
      response: { 200: RecoveryCodes, ...errorResponses(400, 401, 403, 409, 415, 429) }
    }
  }, async request => {
    const recoveryCodes = await factors.confirmTotp(actorOf(request), callerOf(request).sessionId, request.body.code.replace(' ', ''))
    return { recoveryCodes }
  })

  routes.delete('/auth/mfa/totp', {
    preValidation: absentBodyAsEmpty,
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'removeTotp',
      summary: 'Remove the authenticator app, or cancel its setup',
      description: `Removes the authenticator app, and the owner is told by mail; the recovery codes go with it, unless a passkey remains a second factor (they then stay, and stand in for the passkey). Or cancels a setup not yet confirmed (no mail: it never guarded a login). 409 \`MFA_NOT_ENABLED\` when there is neither. ${needsFreshAuthentication}`,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(401, 403, 409) }
    }
  }, async (request, reply) => {
    await factors.removeTotp(actorOf(request), callerOf(request).sessionId)
    return reply.code(204).send(null)
  })
  recoveryAndReauthenticationRoutes(routes, app, { factors, reauthentication, credentials, passwordPolicy }, rateLimit)
}

/** New recovery codes, and fresh authentication. */
function recoveryAndReauthenticationRoutes (routes: TypedRoutes, app: FastifyInstance, { factors, reauthentication, credentials, passwordPolicy }: Pick<MfaRoutesOptions, 'factors' | 'reauthentication' | 'credentials' | 'passwordPolicy'>, rateLimit: ReturnType<typeof perClientIp>) {
  // Each call mails the owner: limited as the routes that check a code are, lest a stolen
  // session flood their mailbox (it had the default limit, 600 a minute).
  routes.post('/auth/mfa/recovery-codes', {
    config: { rateLimit },
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags,
      security,
      operationId: 'regenerateRecoveryCodes',
      summary: 'Replace the recovery codes',
      description: `Ten new codes, shown this once; the earlier ones stop working. Any second factor, an authenticator app or a passkey, has them: an account that began with a passkey gets its first set here. They go when the last factor is removed, and stay through a password reset, as the factor does: whoever holds them and the password passes the login's second step. 409 \`MFA_NOT_ENABLED\` with no second factor. The owner is told by mail. ${needsCurrentPassword} ${needsFreshAuthentication}`,
      body: CurrentPasswordBody(passwordPolicy),
      response: { 200: RecoveryCodes, ...errorResponses(400, 401, 403, 409, 415, 429) }
    }
  }, async request => {
    const password = await credentials.assertCurrentPassword(actorOf(request), request.body.currentPassword, 'recovery_codes')
    return { recoveryCodes: await factors.regenerateRecoveryCodes(actorOf(request), callerOf(request).sessionId, password) }
  })

  routes.post('/auth/reauthenticate', {
    config: { rateLimit },
    schema: {
      tags,
      security,
      operationId: 'reauthenticate',
      summary: 'Prove it is you again, on this session',
      description: 'One of `password`, `code`, `recoveryCode` or `webauthn` (an assertion made with the options of POST /auth/reauthenticate/webauthn/options; the `methods` of a 403 `REAUTHENTICATION_REQUIRED` say which: beside a second factor, only a factor, and the password is refused with that 403). Answers a new access token, in the body to a caller that sent a Bearer token, in its cookie to one that sent the cookie: that token, and only that token, counts as freshly authenticated for REAUTH_MAX_AGE_SECONDS (or its own lifetime, if shorter); a token minted before, a copy taken earlier included, does not, nor do those the session\'s refreshes mint, though they carry the same `auth_time` (a stolen refresh token must not yield a fresh one). The session and its refresh token stay. A wrong password is 403 `INVALID_CURRENT_PASSWORD`, a wrong code or recovery code 403 `MFA_CODE_INVALID`, a refused passkey 403 with a `PASSKEY_*` code; each counts toward the login backoff of the account\'s address, and a wrong code or recovery code also under the account\'s second factor, as at a login\'s second step: a count no password reset lifts. 429, nothing checked, while the account\'s identifiers must wait, or, for a code or a recovery code, its second factor must (a passkey cannot be guessed) (docs/second-factor.md, Second factor).',
      body: ReauthenticateBody(passwordPolicy),
      response: { 200: Type.Union([ReauthenticatedBodyResponse, ReauthenticatedCookieResponse]), ...errorResponses(400, 401, 403, 409, 415, 429) },
      ...authCookies({ 200: 'set' })
    }
  }, async (request, reply) => {
    const caller = callerOf(request)
    const { token, expiresIn, sessionExpiresAt } = await reauthentication.reauthenticate(caller.userId, caller.sessionId, request.body, request.ip)
    if (presentsBearer(request)) return { accessToken: token, tokenType: 'Bearer' as const, expiresIn }
    reply.setAccessCookie(token, sessionExpiresAt)
    return { expiresIn }
  })
}
