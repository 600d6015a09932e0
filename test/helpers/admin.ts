// An admin to act with: registered through the API, promoted (its address proven) in the database, logged in.
import type { FastifyInstance } from 'fastify'
import type { PrismaClient } from '../../src/db/prisma.js'
import { loginWithBody, registerAccount } from './users.js'

export async function loginAsAdmin (app: FastifyInstance, prisma: PrismaClient) {
  const account = await registerAccount(app)
  await prisma.user.update({ where: { id: account.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const tokens = await loginWithBody(app, account)
  return { ...account, ...tokens, headers: { authorization: `Bearer ${tokens.accessToken}` } }
}
