// Second-factor test data: enrol a TOTP factor through the API, and compute its codes on the app's clock.
import type { FastifyInstance } from 'fastify'
import { totpCode } from '../../src/services/mfa/totp.js'
import type { TestClock } from './app.js'

export interface Enrolled {
  secret: string
  recoveryCodes: string[]
}

/** Starts a TOTP enrolment for the caller of `headers` (a fresh session) with their `password`: its secret, unconfirmed. */
export async function startEnrolment (app: FastifyInstance, headers: Record<string, string>, password: string): Promise<string> {
  const started = await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers, payload: { currentPassword: password } })
  if (started.statusCode !== 200) throw new Error(`enrol failed: ${started.statusCode} ${started.body}`)
  return (started.json() as { secret: string }).secret
}

/** POST /auth/mfa/totp/confirm with `code`, from `remoteAddress` (a burst from many addresses passes the per-address limit). */
export async function confirmEnrolment (app: FastifyInstance, headers: Record<string, string>, code: string, remoteAddress?: string) {
  return await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers, payload: { code }, ...(remoteAddress === undefined ? {} : { remoteAddress }) })
}

/** Enrols and confirms TOTP for the caller of `headers` (a fresh session, whose user's password is `password`), with the code of the clock's current step. */
export async function enrolTotp (app: FastifyInstance, headers: Record<string, string>, clock: TestClock, password: string): Promise<Enrolled> {
  const secret = await startEnrolment(app, headers, password)
  const confirmed = await confirmEnrolment(app, headers, totpCode(secret, clock.now()))
  if (confirmed.statusCode !== 200) throw new Error(`confirm failed: ${confirmed.statusCode} ${confirmed.body}`)
  return { secret, recoveryCodes: (confirmed.json() as { recoveryCodes: string[] }).recoveryCodes }
}

/**
 * A code not used before: the clock moves one 30-second step on, since each step's code is
 * accepted once (the app refuses a step at or before the last one accepted).
 */
export function nextCode (secret: string, clock: TestClock): string {
  clock.advance(30)
  return totpCode(secret, clock.now())
}

/** Logs in with email and password; for an account with a factor, the answer is the challenge. */
export async function startLogin (app: FastifyInstance, account: { email: string, password: string }, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/auth/login', headers, payload: { email: account.email, password: account.password } })
}

/** The claims of a JWT, unverified (the tests read what the service put there). */
export function claimsOf (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>
}
