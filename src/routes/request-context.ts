// What the routes need to know about the client behind a request.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify'
import type { Device, SigningInDevice } from '../services/sessions/sessions.js'
import { newDeviceToken, presentedDeviceToken } from '../services/sessions/devices.js'
import { apiError } from '../errors.js'
import { presentsBearer } from '../plugins/access-tokens.js'
import type { Caller } from '../plugins/authenticate.js'

/**
 * Browsers always send Sec-Fetch-Site (or at least Origin) on these requests, and page
 * scripts cannot remove them; other clients do not send them (README, "Which transport").
 */
export function isBrowser (request: FastifyRequest): boolean {
  return request.headers['sec-fetch-site'] !== undefined || request.headers.origin !== undefined
}

export function deviceOf (request: FastifyRequest): Device {
  return { userAgent: request.headers['user-agent'], ip: request.ip }
}

/**
 * A device signing in, with its device token: the body's (an app's), else the device cookie's
 * (a browser's), else a new one, which the answer hands it (see answerLogin).
 */
export function signingInDeviceOf (request: FastifyRequest, bodyToken: string | undefined): SigningInDevice {
  const token = presentedDeviceToken(bodyToken) ?? presentedDeviceToken(request.deviceCookie()) ?? newDeviceToken()
  return { ...deviceOf(request), token }
}

/** The authenticated caller; routes guarded by `app.authenticate` always have one. */
export function callerOf (request: FastifyRequest): Caller {
  if (request.caller === null) throw apiError('AUTH_REQUIRED')
  return request.caller
}

/** Who acts, on which session and from where: what the services check and audit. */
export function actorOf (request: FastifyRequest): { userId: string, sessionId: string, ip: string } {
  const caller = callerOf(request)
  return { userId: caller.userId, sessionId: caller.sessionId, ip: request.ip }
}

/**
 * Clears the auth cookies after a call ended its caller's session, when the call came with them.
 * Beside a Bearer header, which is what the call ran as, they are another session's, which lives
 * on: cleared, it would be signed out of this browser alone (regression).
 */
export function clearCallerCookies (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return presentsBearer(request) ? reply : reply.clearAuthCookies()
}

/** Responses carrying tokens or user data must not be stored by any cache (RFC 9111 5.2.2.5). */
export function noStore (_request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void): void {
  reply.header('cache-control', 'no-store')
  done(null, payload)
}

/**
 * For routes whose body is optional (a browser refreshes with cookies and no body): an
 * absent body is validated as `{}`, so its schema still rejects anything else — JSON `null`
 * included, which is a body, and not an object.
 */
export async function absentBodyAsEmpty (request: FastifyRequest): Promise<void> {
  if (request.body === undefined) request.body = {}
}

/** A route plugin's instance with TypeBox types, for the helpers that register a group of its routes. */
export type TypedRoutes = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>
