// /auth: registration and login (and, as the token lifecycle grows, refresh and logout).
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { PasswordPolicy } from '../schemas/common.js'
import { errorResponses } from '../schemas/common.js'
import { LoginBody, LoginCookieResponse, LoginTokenResponse, RegisterBody, RegisterResponse } from '../schemas/auth.js'
import type { AuthService, LoginIdentifier } from '../services/auth.js'
import type { UserService } from '../services/users.js'
import { deviceOf, isBrowser, noStore } from './client.js'

export interface AuthRoutesOptions {
  auth: AuthService
  users: UserService
  passwordPolicy: PasswordPolicy
}

export async function authRoutes (app: FastifyInstance, { auth, users, passwordPolicy }: AuthRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)

  routes.post('/auth/register', {
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create an account (does not log in)',
      body: RegisterBody(passwordPolicy),
      response: { 201: RegisterResponse, ...errorResponses(400, 409, 415, 429) }
    }
  }, async (request, reply) => {
    const user = await users.register(request.body)
    return reply.code(201).send({ user })
  })

  routes.post('/auth/login', {
    schema: {
      tags: ['auth'],
      operationId: 'login',
      summary: 'Log in with email or username and password',
      description: 'A browser (recognised by Sec-Fetch-Site/Origin) or a client sending `transport: "cookie"` gets HttpOnly cookies and no tokens in the body; any other client gets the tokens in the body.',
      body: LoginBody(passwordPolicy),
      response: { 200: Type.Union([LoginTokenResponse, LoginCookieResponse]), ...errorResponses(400, 401, 415, 429) }
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
}
