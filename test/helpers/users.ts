// Test data: unique accounts, and logging them in through the API as each kind of client would.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { PrismaClient } from '../../src/db/prisma.js'

export interface Account {
  email: string
  password: string
  username: string
}

export function newAccount (): Account {
  const id = randomBytes(5).toString('hex')
  return { email: `user-${id}@example.com`, password: `correct horse ${id} battery`, username: `user_${id}` }
}

/** Registers a fresh account through the API and returns its credentials and user. */
export async function registerAccount (app: FastifyInstance, account: Account = newAccount()) {
  const response = await app.inject({ method: 'POST', url: '/auth/register', payload: account })
  if (response.statusCode !== 201) throw new Error(`register failed: ${response.statusCode} ${response.body}`)
  return { ...account, user: response.json().user as { id: string, email: string } }
}

/**
 * Marks the account's address verified, as following its mailed link does (the link itself is
 * tested in email-verification.test.ts): a second factor is set up only on a proven address.
 */
export async function proveAddress (prisma: PrismaClient, userId: string): Promise<void> {
  await prisma.user.update({ where: { id: userId }, data: { emailVerifiedAt: new Date() } })
}

/** Registers a fresh account with its address already proven, ready to set up a second factor. */
export async function registerProvenAccount (app: FastifyInstance, prisma: PrismaClient, account: Account = newAccount()) {
  const registered = await registerAccount(app, account)
  await proveAddress(prisma, registered.user.id)
  return registered
}

/** Logs in as a mobile/server client: tokens in the body. */
export async function loginWithBody (app: FastifyInstance, account: Pick<Account, 'email' | 'password'>) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  return response.json() as { sessionId: string, accessToken: string, refreshToken: string, expiresIn: number }
}

/** Logs in as a browser on the service's own origin: cookies only. Returns them as a Cookie header. */
export async function loginWithCookies (app: FastifyInstance, account: Pick<Account, 'email' | 'password'>) {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'sec-fetch-site': 'same-origin' },
    payload: { email: account.email, password: account.password }
  })
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`)
  const cookie = response.cookies.map(c => `${c.name}=${c.value}`).join('; ')
  return { response, cookie }
}
