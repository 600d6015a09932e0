// /auth: registration, login, refresh, logout. Cookie-borne tokens are answered with cookies, body-borne with the body.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimits } from '../config.js'
import { apiError, type ErrorCode } from '../errors.js'
import { perClientIp } from '../plugins/rate-limits.js'
import { errorResponses, type PasswordPolicy } from '../schemas/common.js'
import {
  LoginBody, LoginCookieResponse, LoginTokenResponse, RefreshBodyResponse, RefreshCookieResponse,
  RefreshTokenBody, RegisterBody, RegisterResponse
} from '../schemas/auth.js'
import { loginIdentifierOf, type AuthService, type LoginIdentifier } from '../services/auth.js'
import { throttleKeyOf } from '../services/login-throttle.js'
import type { RefreshService } from '../services/refresh.js'
import type { SessionService } from '../services/sessions.js'
import type { UserService } from '../services/users.js'
import { absentBodyAsEmpty, callerOf, deviceOf, isBrowser, noStore } from './client.js'

export interface AuthRoutesOptions {
  auth: AuthService
  users: UserService
  sessions: SessionService
  refresh: RefreshService
  passwordPolicy: PasswordPolicy
  limits: RateLimits
}

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cookieAuth: [] }]

const refusedRefreshCodes = new Set<string>(['AUTH_REFRESH_INVALID', 'AUTH_REFRESH_EXPIRED', 'AUTH_REFRESH_REVOKED', 'AUTH_REFRESH_REUSED'] satisfies ErrorCode[])

// The account a login attempt names, keyed as the brute-force backoff keys it (the body is validated by then).
const loginAccountKey = (request: FastifyRequest) => throttleKeyOf(loginIdentifierOf(request.body as LoginIdentifier))

export async function authRoutes (app: FastifyInstance, { auth, users, sessions, refresh, passwordPolicy, limits }: AuthRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)

  routes.post('/auth/register', {
    config: { rateLimit: perClientIp(limits.register) },
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create an account (does not log in)',
      body: RegisterBody(passwordPolicy),
      response: { 201: RegisterResponse, ...errorResponses(400, 403, 409, 415, 429) }
    }
  }, async (request, reply) => {
    const user = await users.register(request.body)
    return reply.code(201).send({ user })
  })

  routes.post('/auth/login', {
    config: { rateLimit: perClientIp(limits.loginIp) },
    // Per account too, whether or not it exists: the same 429 for both (DESIGN 5.1).
    preHandler: [app.rateLimitBy('login-account', limits.loginAccount, loginAccountKey)],
    schema: {
      tags: ['auth'],
      operationId: 'login',
      summary: 'Log in with email or username and password',
      description: 'A browser (recognised by Sec-Fetch-Site/Origin) or a client sending `transport: "cookie"` gets HttpOnly cookies and no tokens in the body; any other client gets the tokens in the body.',
      body: LoginBody(passwordPolicy),
      response: { 200: Type.Union([LoginTokenResponse, LoginCookieResponse]), ...errorResponses(400, 401, 403, 415, 429) }
    }
  }, async (request, reply) => {
    const { password, transport, ...who } = request.body
    const result = await auth.login(who as LoginIdentifier, password, deviceOf(request))
    if (transport === 'cookie' || isBrowser(request)) {
      reply.setAuthCookies(result)
      return { user: result.user, expiresIn: result.expiresIn }
    }
    const { accessToken, refreshToken, expiresIn, user } = result
    return { accessToken, refreshToken, tokenType: 'Bearer' as const, expiresIn, user }
  })

  routes.post('/auth/refresh', {
    config: { rateLimit: perClientIp(limits.refresh) },
    schema: {
      tags: ['auth'],
      operationId: 'refresh',
      summary: 'Exchange the refresh token for new tokens (rotation)',
      description: 'The refresh token comes from the body or, when the body has none, from the refresh cookie; the answer uses the same transport. A retired token presented again ends the session (`AUTH_REFRESH_REUSED`), except the immediately previous one within the grace window, which gets the same successor.',
      body: RefreshTokenBody,
      response: { 200: Type.Union([RefreshBodyResponse, RefreshCookieResponse]), ...errorResponses(400, 401, 403, 415, 429) }
    },
    preValidation: absentBodyAsEmpty,
    // A refused refresh cookie is useless to keep: the browser drops it. Only a refusal of the
    // token itself: a 429, a 503 or a cross-site request refused (403 CSRF_REJECTED, which a
    // page of a sibling origin can provoke at will) must not sign the browser out.
    onError: async (request, reply, error) => {
      if (request.body?.refreshToken === undefined && refusedRefreshCodes.has((error as { code?: string }).code ?? '')) reply.clearAuthCookies()
    }
  }, async (request, reply) => {
    const bodyToken = request.body.refreshToken
    const token = bodyToken ?? request.authCookies().refreshToken
    if (token === undefined || token === '') throw apiError('AUTH_REQUIRED')
    const tokens = await refresh.refresh(token, deviceOf(request))
    if (bodyToken !== undefined) {
      return { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, tokenType: 'Bearer' as const, expiresIn: tokens.expiresIn }
    }
    reply.setAuthCookies(tokens)
    return { expiresIn: tokens.expiresIn }
  })

  routes.post('/auth/logout', {
    preValidation: absentBodyAsEmpty,
    schema: {
      tags: ['auth'],
      operationId: 'logout',
      summary: 'End this session and clear the cookies',
      description: 'Identifies the session by the refresh token in the body, else the Bearer access token, else the refresh or access cookie. Idempotent: 204 even with no or stale credentials.',
      body: RefreshTokenBody,
      response: { 204: Type.Null(), ...errorResponses(400, 403, 415) }
    }
  }, async (request, reply) => {
    await endPresentedSession(request, request.body.refreshToken)
    return reply.clearAuthCookies().code(204).send()
  })

  routes.post('/auth/logout-all', {
    preParsing: [app.authenticate],
    schema: {
      tags: ['auth'],
      operationId: 'logoutAll',
      summary: 'End every session of the caller',
      security,
      response: { 204: Type.Null(), ...errorResponses(401, 403) }
    }
  }, async (request, reply) => {
    await sessions.revokeAll(callerOf(request).userId, 'logout_all')
    return reply.clearAuthCookies().code(204).send()
  })

  async function endPresentedSession (request: FastifyRequest, bodyToken: string | undefined): Promise<void> {
    const refreshToken = bodyToken ?? (request.headers.authorization === undefined ? request.authCookies().refreshToken : undefined)
    if (refreshToken !== undefined) return sessions.revokeByRefreshToken(refreshToken, 'logout')
    try {
      await app.authenticate(request)
    } catch {
      return // nothing valid presented: there is no session to end
    }
    const caller = callerOf(request)
    await sessions.revoke(caller.userId, caller.sessionId, 'logout')
  }
}
