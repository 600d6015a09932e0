// /auth: registration, login (its second step, /auth/mfa/verify, included), refresh, logout. Cookie-borne tokens are answered with cookies, body-borne with the body.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimits } from '../config-derived.js'
import { apiError, isDeadRefreshToken } from '../errors.js'
import type { AccessTokenClaims } from '../plugins/access-token-jwt.js'
import { presentsBearer } from '../plugins/access-tokens.js'
import { clientOf } from '../plugins/client-address.js'
import { perClientIp, sharedBudgets } from '../plugins/rate-limits.js'
import { authCookies, errorResponses, type PasswordPolicy, security } from '../schemas/common.js'
import {
  LoginBody, LoginCookieResponse, LoginTokenResponse, RefreshBodyResponse, RefreshCookieResponse,
  RefreshTokenBody, RegisterBody, RegisterResponse
} from '../schemas/auth.js'
import { EmptyBody } from '../schemas/accounts.js'
import { MfaChallengeResponse, MfaVerifyBody } from '../schemas/mfa.js'
import { isSecondFactorRequired, loginIdentifierOf, type LoginService, type LoginIdentifier, type SignedIn } from '../services/sessions/login.js'
import type { IdentifierKeys } from '../services/sessions/login-throttle.js'
import type { RefreshService } from '../services/sessions/refresh.js'
import type { SessionService } from '../services/sessions/sessions.js'
import type { UserService } from '../services/accounts/users.js'
import { absentBodyAsEmpty, actorOf, clearCallerCookies, deviceOf, isBrowser, noStore, signingInDeviceOf, type TypedRoutes } from './request-context.js'

export interface AuthRoutesOptions {
  logins: LoginService
  users: UserService
  sessions: SessionService
  refresh: RefreshService
  identifierKeys: IdentifierKeys
  passwordPolicy: PasswordPolicy
  limits: RateLimits
}

/**
 * What a completed login answers, after the password or after its second factor alike (README,
 * "Which transport"): a browser, or a client asking for cookies, gets the cookies and no token.
 */
export function answerLogin (request: FastifyRequest, reply: FastifyReply, result: SignedIn, transport: 'cookie' | undefined) {
  if (transport === 'cookie' || isBrowser(request)) {
    reply.setAuthCookies(result).setDeviceCookie(result.deviceToken)
    return { sessionId: result.sessionId, user: result.user, expiresIn: result.expiresIn }
  }
  const { sessionId, accessToken, refreshToken, expiresIn, user, deviceToken } = result
  return { sessionId, accessToken, refreshToken, tokenType: 'Bearer' as const, expiresIn, user, deviceToken }
}

export async function authRoutes (app: FastifyInstance, { logins, users, sessions, refresh, identifierKeys, passwordPolicy, limits }: AuthRoutesOptions) {
  /**
   * The account a login attempt names, keyed as the brute-force backoff keys it (the body is
   * validated by then), and the client: counted over every client, a stranger's few requests
   * per window kept the owner from logging in at all. The backoff, in the database, counts
   * every client's failures.
   */
  const loginAccountKey = (request: FastifyRequest) => `${identifierKeys.of(loginIdentifierOf(request.body as LoginIdentifier))}:${clientOf(request)}`
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)

  const recipientLimit = app.rateLimitKey(sharedBudgets.unprovenRecipient, limits.mailAccount, { sharedWithStrangers: true })
  // A login refused for an unverified address mails a reminder only within that same budget.
  const reminderBudget = app.rateLimitSpend(sharedBudgets.unprovenRecipient, limits.mailAccount)
  routes.post('/auth/register', {
    // Its 409 tells that an address or a name has an account: one budget per client with the
    // other answers that do (a username or email change). Its mail goes to an address nobody
    // has proven to hold: one budget per address with the other such mails, whether or not the
    // address has an account, spent once the password passes the policy (docs/security.md, Rate limits).
    preHandler: [app.rateLimitBy(sharedBudgets.existenceProbes, limits.register, clientOf)],
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create an account (does not log in)',
      description: 'Mails a verification link to the address. 409 `USER_EXISTS` when another account has the email or the username, or when the username is kept for the operator\'s accounts (`admin`, `support` and the like). Counts against RATE_LIMIT_REGISTER per client, with the username and email changes, and, once the password passes the policy, against RATE_LIMIT_MAIL_ACCOUNT per address, with the email changes to it and the links resent to it, whether or not an account has it (429 `RATE_LIMITED`).',
      body: RegisterBody(passwordPolicy),
      response: { 201: RegisterResponse, ...errorResponses(400, 409, 415, 429) }
    }
  }, async (request, reply) => {
    const user = await users.register(request.body, request.ip, async email => { await recipientLimit(request, reply, identifierKeys.mailbox(email)) })
    return reply.code(201).send({ user })
  })

  routes.post('/auth/login', {
    config: { rateLimit: perClientIp(limits.loginIp) },
    // Per account too, whether or not it exists: the same 429 for both (docs/security.md, Rate limits).
    preHandler: [app.rateLimitBy('login-account', limits.loginAccount, loginAccountKey)],
    schema: {
      tags: ['auth'],
      operationId: 'login',
      summary: 'Log in with email or username and password',
      description: 'A browser (recognised by Sec-Fetch-Site/Origin) or a client sending `transport: "cookie"` gets HttpOnly cookies and no tokens in the body; any other client gets the tokens in the body. An account with a second factor answers `mfaRequired: true` with an `mfaToken` instead, and no token or cookie: POST /auth/mfa/verify completes the login.',
      body: LoginBody(passwordPolicy),
      response: { 200: Type.Union([LoginTokenResponse, LoginCookieResponse, MfaChallengeResponse]), ...errorResponses(400, 401, 403, 415, 429) },
      ...authCookies({ 200: 'signed_in' })
    }
  }, async (request, reply) => {
    const { password, transport, deviceToken, ...who } = request.body
    const outcome = await logins.login(who as LoginIdentifier, password, signingInDeviceOf(request, deviceToken), async address => await reminderBudget(request, identifierKeys.mailbox(address)))
    if (isSecondFactorRequired(outcome)) return outcome
    return answerLogin(request, reply, outcome, transport)
  })

  routes.post('/auth/mfa/verify', {
    config: { rateLimit: perClientIp(limits.loginIp) },
    schema: {
      tags: ['auth'],
      operationId: 'verifySecondFactor',
      summary: 'Complete a login with its second factor',
      description: 'One of `code` (TOTP), `recoveryCode` or `webauthn` (an assertion made with the options of POST /auth/mfa/webauthn/options), with the `mfaToken` of the login answer. Answers exactly as a login does, in the same transport. The challenge works once, for 5 minutes, and dies after 5 wrong codes (401 `MFA_CHALLENGE_EXPIRED`); a 503 after the code was accepted can be sent again with the same `mfaToken`, and opens the session without spending another code; a wrong code is 401 `MFA_CODE_INVALID` and counts toward the account\'s login backoff (429 `RATE_LIMITED`).',
      body: MfaVerifyBody,
      response: { 200: Type.Union([LoginTokenResponse, LoginCookieResponse]), ...errorResponses(400, 401, 403, 415, 429) },
      ...authCookies({ 200: 'signed_in' })
    }
  }, async (request, reply) => {
    const { mfaToken, transport, deviceToken, ...proof } = request.body
    const result = await logins.completeSecondFactor(mfaToken, proof, signingInDeviceOf(request, deviceToken))
    return answerLogin(request, reply, result, transport)
  })
  refreshRoute(routes, { refresh, limits })
  logoutRoutes(routes, app, sessions)
}

/** Rotating the refresh token. */
function refreshRoute (routes: TypedRoutes, { refresh, limits }: Pick<AuthRoutesOptions, 'refresh' | 'limits'>) {
  routes.post('/auth/refresh', {
    config: { rateLimit: perClientIp(limits.refresh) },
    schema: {
      tags: ['auth'],
      operationId: 'refresh',
      summary: 'Exchange the refresh token for new tokens (rotation)',
      description: 'The refresh token comes from the body or, when the body has none, from the refresh cookie, unless the request has an `Authorization: Bearer` header, which wins over the cookies (401 `AUTH_REQUIRED` without a body token); the answer uses the same transport. A retired token presented again ends the session (`AUTH_REFRESH_REUSED`; its device is forgotten: docs/security.md, "Sign-in notices"), except the immediately previous one within the grace window, which gets the same successor. A refusal clears the cookies only when the presented token is dead (`AUTH_REFRESH_INVALID`, `_EXPIRED`, `_REVOKED`, `_REUSED`); any other (CSRF, 400, 415, 429, 503) leaves them for a later retry.',
      body: RefreshTokenBody,
      response: { 200: Type.Union([RefreshBodyResponse, RefreshCookieResponse]), ...errorResponses(400, 401, 403, 415, 429) },
      ...authCookies({ 200: 'set', 401: 'cleared' })
    },
    preValidation: absentBodyAsEmpty,
    // Only a dead cookie is dropped. Any other refusal (a cross-site request, a bad request, a
    // rate limit, an outage) says nothing about the session, which must refresh once it passes.
    onError: async (request, reply, error) => {
      if (request.body?.refreshToken === undefined && isDeadRefreshToken(error)) reply.clearAuthCookies()
    }
  }, async (request, reply) => {
    const bodyToken = request.body.refreshToken
    // A Bearer header wins over the cookies, with no fallback (README, "Which transport"): it
    // lets the request past the CSRF check, which guards the cookies (regression: with `Bearer
    // junk`, a cross-site request rotated the session of the cookies it skipped the check for).
    const tokens = await refresh.refresh(bodyToken ?? (presentsBearer(request) ? undefined : request.authCookies().refreshToken), deviceOf(request))
    if (bodyToken !== undefined) {
      return { sessionId: tokens.sessionId, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, tokenType: 'Bearer' as const, expiresIn: tokens.expiresIn }
    }
    reply.setAuthCookies(tokens)
    return { sessionId: tokens.sessionId, expiresIn: tokens.expiresIn }
  })
}

/** Logging out here, or everywhere. */
function logoutRoutes (routes: TypedRoutes, app: FastifyInstance, sessions: SessionService) {
  routes.post('/auth/logout', {
    preValidation: absentBodyAsEmpty,
    schema: {
      tags: ['auth'],
      operationId: 'logout',
      summary: 'End this session and clear the cookies',
      description: 'Identifies the session by the refresh token in the body, else the Bearer access token, else the refresh or access cookie; a refresh token that names no session leaves it to the access token (Bearer or cookie), which may have expired or been signed by a key retired since: its signature still names the session. A Bearer header wins over the cookies, which are then not read; an Authorization header of another scheme (Basic, Negotiate) is not the service\'s and is passed over. The cookies are cleared only when they named the session (or nothing did): beside a token that named one, they are another session\'s. Ends an email change the session asked for, with its link. Idempotent: 204 even with no or stale credentials, except a Bearer token that names no session beside the auth cookies: 401 `AUTH_TOKEN_INVALID`, and the cookies are left as they are, since their session lives on. Audited as `logout.succeeded` when it ends a session.',
      body: RefreshTokenBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 415) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    // A token in the body or a Bearer header speaks for its own session, whose client holds no
    // cookie: cookies beside it are another session's, which lives on, and clearing them would
    // sign that one out here only (regression).
    if (await endPresentedSession(request, request.body.refreshToken) === 'cookies') reply.clearAuthCookies()
    return reply.code(204).send(null)
  })

  routes.post('/auth/logout-all', {
    preValidation: absentBodyAsEmpty,
    preParsing: [app.authenticate],
    preHandler: [app.requireFreshAuthentication],
    schema: {
      tags: ['auth'],
      operationId: 'logoutAll',
      summary: 'End every session of the caller',
      description: 'Also ends what a session began and did not finish: a pending email change and its link, the reset links, the login challenges and the set-ups of an authenticator app or a passkey under way (the remedy for a stolen session); a sign-in under way opens no session after it. Audited as `sessions.revoked`. Needs fresh authentication (403 `REAUTHENTICATION_REQUIRED`).',
      security,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(401, 403) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    const actor = actorOf(request)
    await sessions.signOutEverywhere(actor, actor.userId, 'logout_all')
    return clearCallerCookies(request, reply).code(204).send()
  })

  /**
   * Ends the session the request presents, or none, and says whether a token (in the body or a
   * Bearer header) named it, or the cookies did: only then are they cleared. Throws rather than
   * answer 204 to a Bearer token that named no session beside the auth cookies: their user
   * would be told they signed out while that session, and a copy of its refresh token, work on.
   */
  async function endPresentedSession (request: FastifyRequest, bodyToken: string | undefined): Promise<'token' | 'cookies'> {
    // A Bearer header wins over the cookies, with no fallback: it lets the request past the CSRF
    // check, which guards the cookies. Another scheme (Basic, Negotiate) is not the service's (see
    // AccessTokens.presented): the cookies beside it are what it signs out with (regression: 204
    // and cleared cookies, and their session lived on).
    // A body token that names no session leaves it to the header's token, or to the cookies.
    if (bodyToken !== undefined && await sessions.logOutByRefreshToken(bodyToken, request.ip)) return 'token'
    if (presentsBearer(request)) {
      const claims = claimsOf(() => app.accessTokens.presented(request))
      if (claims !== null) await sessions.logOut(claims.sub, claims.sid, request.ip)
      else if (carriesAuthCookies(request)) throw apiError('AUTH_TOKEN_INVALID')
      return 'token'
    }
    const cookies = request.authCookies()
    // A refresh token that names no session of ours (stale, corrupted) leaves the access token
    // to say which session ends (regression: 204 and cleared cookies, and the session lived on).
    if (cookies.refreshToken !== undefined && await sessions.logOutByRefreshToken(cookies.refreshToken, request.ip)) return 'cookies'
    const claims = cookies.accessToken === undefined ? null : claimsOf(() => cookies.accessToken as string)
    if (claims !== null) await sessions.logOut(claims.sub, claims.sid, request.ip)
    return 'cookies'
  }

  /**
   * The claims of an access token, expired or not (a client logging out after a pause must not
   * be told 204 while the session, and its refresh token, live on: the signature still names
   * it), or null when it is no token of ours.
   */
  function claimsOf (token: () => string): AccessTokenClaims | null {
    try {
      return app.accessTokens.verifyAllowingExpiry(token())
    } catch {
      return null
    }
  }
}

/** Whether a request carries either auth cookie, read or not. */
function carriesAuthCookies (request: FastifyRequest): boolean {
  const { accessToken, refreshToken } = request.authCookies()
  return accessToken !== undefined || refreshToken !== undefined
}
