// /users/me: the caller's own account.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import { errorResponses, User } from '../schemas/common.js'
import { UpdateMeBody } from '../schemas/users.js'
import type { UserService } from '../services/users.js'
import { callerOf, noStore } from './client.js'

export interface UserRoutesOptions {
  users: UserService
}

const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cookieAuth: [] }]

export async function userRoutes (app: FastifyInstance, { users }: UserRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onRequest', app.authenticate)
  routes.addHook('onSend', noStore)

  routes.get('/users/me', {
    schema: {
      tags: ['users'],
      operationId: 'getMe',
      summary: 'The caller and their profile',
      security,
      response: { 200: Type.Ref(User), ...errorResponses(401) }
    }
  }, async request => {
    const caller = callerOf(request)
    return users.me(caller.userId, caller.sessionId)
  })

  const updateMe = (operationId: string, summary: string) => ({
    schema: {
      tags: ['users'],
      operationId,
      summary,
      security,
      body: UpdateMeBody,
      response: { 200: Type.Ref(User), ...errorResponses(400, 401, 409, 415) }
    }
  })
  const handleUpdate = async (request: FastifyRequest<{ Body: Static<typeof UpdateMeBody> }>) => {
    const caller = callerOf(request)
    return users.updateMe(caller.userId, caller.sessionId, request.body)
  }
  routes.patch('/users/me', updateMe('updateMe', 'Change username or profile fields'), handleUpdate)
  routes.put('/users/me', updateMe('replaceMe', 'Alias of PATCH /users/me'), handleUpdate)
}
