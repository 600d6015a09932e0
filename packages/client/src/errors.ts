// Errors as typed values: the service's `code`, or one of the client's own when no answer came.
import type { ErrorBody, ReauthenticationMethod, ServiceErrorCode } from './api-types.js'

/**
 * Failures the client itself observes: no answer (`NETWORK_ERROR`), no answer in time
 * (`TIMEOUT`), an answer that is not the service's (`UNEXPECTED_RESPONSE`: a proxy's error
 * page, a body of the wrong shape), a call refused for a session that was replaced while it
 * was under way (`SESSION_CHANGED`: a sign-in, here or in another tab or app; it was not sent
 * again, as it would have run as the new session, and its refusal says nothing of the session
 * now), or, in token mode, a storage still busy with an earlier call after `storageTimeoutMs`
 * (`STORAGE_TIMEOUT`).
 */
export type ClientErrorCode = 'NETWORK_ERROR' | 'TIMEOUT' | 'UNEXPECTED_RESPONSE' | 'SESSION_CHANGED' | 'STORAGE_TIMEOUT'

export type AuthErrorCode = ServiceErrorCode | ClientErrorCode

export class AuthError extends Error {
  override readonly name = 'AuthError'
  /**
   * The service's stable code (its error catalogue), or the client's own. A newer service
   * may answer a code this version does not list, hence the open string.
   */
  readonly code: AuthErrorCode | (string & {})
  /** The HTTP status; 0 when no answer came. */
  readonly status: number
  /** From `Retry-After` on a 429 or 503 (in seconds): how long to wait before trying again; undefined on any other status. */
  readonly retryAfterSeconds: number | undefined
  /**
   * On a 403 `REAUTHENTICATION_REQUIRED`: what `reauthenticate()` accepts for this account,
   * so that the app asks for a password, a code or a passkey; undefined on any other error.
   */
  readonly methods: ReauthenticationMethod[] | undefined

  constructor (code: AuthErrorCode | (string & {}), message: string, status: number, options: { retryAfterSeconds?: number, methods?: ReauthenticationMethod[], cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.status = status
    this.retryAfterSeconds = options.retryAfterSeconds
    this.methods = options.methods
  }

  /** The same status for HTTP frameworks that read it under this name (Fastify does). */
  get statusCode (): number {
    return this.status
  }
}

/** Whether `value` is an AuthError, with this code when one is given. Works across copies of the package. */
export function isAuthError (value: unknown, code?: AuthErrorCode): value is AuthError {
  return value instanceof Error && value.name === 'AuthError' && (code === undefined || (value as AuthError).code === code)
}

function isErrorBody (value: unknown): value is ErrorBody {
  const body = value as Partial<ErrorBody> | null
  return typeof body?.code === 'string' && typeof body.message === 'string'
}

// A Record, not a list: a method the service adds fails the type-check here until it is listed.
const knownMethods: Record<ReauthenticationMethod, true> = { password: true, totp: true, recovery_code: true, webauthn: true }

/** The methods this version can name; a newer service's other ones are left out, as no prompt of the app could offer them. */
function methodsOf (body: ErrorBody): ReauthenticationMethod[] | undefined {
  if (!Array.isArray(body.methods)) return undefined
  return body.methods.filter((method): method is ReauthenticationMethod => Object.hasOwn(knownMethods, method))
}

// The answers whose Retry-After is kept (RFC 9110 10.2.3; RFC 6585 4).
const WAIT_STATUSES = new Set([429, 503])

/** The AuthError a failed response stands for. Reads the body. */
export async function errorFrom (response: Response): Promise<AuthError> {
  const body: unknown = await response.json().catch(() => undefined)
  // Only a rate limit or an outage says when to come back: on another status (a 401, a
  // gateway's 502) it is no advice for the call, and an app would wait on it for nothing.
  const retryAfter = WAIT_STATUSES.has(response.status) ? Number(response.headers.get('retry-after')) : 0
  const options = retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}
  if (isErrorBody(body)) return new AuthError(body.code, body.message, response.status, { ...options, methods: methodsOf(body) })
  return new AuthError('UNEXPECTED_RESPONSE', `Unexpected answer: HTTP ${response.status}`, response.status, options)
}

/** A 401's code, and the session of an expired token when the service names it. */
export interface Refusal {
  code: string
  sessionId: string | undefined
}

/** What a 401 says, read from a copy so that the response stays readable; undefined for anything else. */
export async function refusalOf (response: Response): Promise<Refusal | undefined> {
  if (response.status !== 401) return undefined
  const body: unknown = await response.clone().json().catch(() => undefined)
  if (!isErrorBody(body)) return { code: 'UNEXPECTED_RESPONSE', sessionId: undefined }
  return { code: body.code, sessionId: typeof body.sessionId === 'string' ? body.sessionId : undefined }
}

/**
 * Whether a 401 refuses the session itself: not AUTH_TOKEN_EXPIRED (a refresh mends it), nor
 * AUTH_SESSION_MISMATCH (the request named another session than its credentials': a header of
 * the app's own, or cookies another app replaced, which the cookie client tells itself).
 */
export function refusesSession (code: string): boolean {
  return code !== 'AUTH_TOKEN_EXPIRED' && code !== 'AUTH_SESSION_MISMATCH'
}

/** The call was refused for a session that a sign-in has replaced since, and was not sent again. */
export function sessionChanged (): AuthError {
  return new AuthError('SESSION_CHANGED', 'The session this call was made in was replaced while it was under way; it was not sent again', 401)
}
