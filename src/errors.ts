// The error catalogue: every failure the API can return, with its stable code. This is API contract.
import createError from '@fastify/error'

const catalogue = {
  VALIDATION_FAILED: [400, 'The request is invalid: %s'],
  INVALID_JSON: [400, 'The request body is not valid JSON'],
  MALFORMED_REQUEST: [400, 'The request is not valid HTTP/1.1'],
  PASSWORD_TOO_WEAK: [400, 'The password is too short, too common or too easy to guess; choose another'],
  RESET_TOKEN_INVALID: [400, 'This password reset link is invalid or was already used; ask for a new one'],
  RESET_TOKEN_EXPIRED: [400, 'This password reset link has expired; ask for a new one'],
  VERIFICATION_TOKEN_INVALID: [400, 'This verification link is invalid or was already used (an email change\'s link also ends when the session that asked for it does: sign in and ask again)'],
  VERIFICATION_TOKEN_EXPIRED: [400, 'This verification link has expired; ask for a new one'],
  // 401 at POST /auth/mfa/verify; 400 when confirming an enrolment, 403 when reauthenticating (see withStatus).
  MFA_CODE_INVALID: [401, 'The code is wrong or was already used'],
  MFA_CHALLENGE_EXPIRED: [401, 'This sign-in has expired or had too many wrong codes; log in again'],
  // Passkeys: 401 at sign-in and POST /auth/mfa/verify, 400 when registering, 403 when reauthenticating (see withStatus).
  PASSKEY_CHALLENGE_EXPIRED: [401, 'This passkey request has expired or was already used; ask for new options'],
  PASSKEY_INVALID: [401, 'The passkey was not accepted'],
  PASSKEY_ORIGIN_MISMATCH: [401, 'The passkey was used on a page whose origin this service does not accept'],
  PASSKEY_RP_ID_MISMATCH: [401, 'The passkey belongs to another site (relying party id)'],
  PASSKEY_USER_NOT_VERIFIED: [401, 'The authenticator did not verify the user (PIN or biometrics); a passkey sign-in needs that'],
  PASSKEY_COUNTER_REGRESSED: [401, 'The passkey reported a use count lower than before: it may have been cloned, so it was refused'],
  PASSKEY_PASSWORD_REQUIRED: [401, 'The password was changed since this passkey was last used: sign in with the password, then the passkey, and it signs in alone again'],
  AUTH_REQUIRED: [401, 'Authentication is required'],
  AUTH_INVALID_CREDENTIALS: [401, 'Invalid credentials'],
  AUTH_TOKEN_INVALID: [401, 'The access token is invalid'],
  AUTH_TOKEN_EXPIRED: [401, 'The access token has expired'],
  AUTH_SESSION_MISMATCH: [401, 'The access token is of another session than the one the request names (X-Auth-Session-Id): the credentials were replaced since the call was first sent'],
  AUTH_SESSION_REVOKED: [401, 'The session has ended; log in again'],
  AUTH_REFRESH_INVALID: [401, 'The refresh token is invalid'],
  AUTH_REFRESH_EXPIRED: [401, 'The session has expired; log in again'],
  AUTH_REFRESH_REVOKED: [401, 'The session has ended; log in again'],
  AUTH_REFRESH_REUSED: [401, 'This refresh token was already used; the session has been ended for safety'],
  FORBIDDEN: [403, 'You are not allowed to do this'],
  CSRF_REJECTED: [403, 'Cross-site request refused: its origin is neither PUBLIC_URL nor one of CORS_ORIGINS, or, for the admin API with cookies, not PUBLIC_URL'],
  INVALID_CURRENT_PASSWORD: [403, 'The current password is wrong'],
  EMAIL_NOT_VERIFIED: [403, 'Verify your email address first: follow the link mailed to you'],
  REAUTHENTICATION_REQUIRED: [403, 'Confirm it is you first: POST /auth/reauthenticate with one of the methods listed'],
  MFA_ENROLMENT_REQUIRED: [403, 'Admins must use a second factor: set one up (POST /auth/mfa/totp), or prove it on this session (POST /auth/reauthenticate)'],
  NOT_FOUND: [404, 'Not found'],
  METHOD_NOT_ALLOWED: [405, 'This resource does not take this method; the Allow header lists those it takes'],
  REQUEST_TIMEOUT: [408, 'The request did not arrive in time; the connection is closed'],
  USER_EXISTS: [409, 'An account with this email or username already exists'],
  USERNAME_TAKEN: [409, 'This username is taken'],
  LAST_ADMIN: [409, 'This would leave no active admin'],
  EMAIL_TAKEN: [409, 'This email address is used by another account'],
  USER_INACTIVE: [409, 'This account is deactivated; activate it first'],
  USER_UNVERIFIED: [409, 'This account\'s address was never proven: have its password reset first (the reset proves the address, and the password becomes its owner\'s)'],
  MFA_ALREADY_ENABLED: [409, 'A second factor is already set up; remove it first'],
  MFA_NOT_ENABLED: [409, 'This account has no %s'],
  PASSKEY_ALREADY_REGISTERED: [409, 'This passkey is already registered'],
  PASSKEY_LIMIT_REACHED: [409, 'This account has as many passkeys as it may have; remove one first'],
  MFA_ENROLMENT_NOT_STARTED: [409, 'Start the enrolment first: POST /auth/mfa/totp'],
  PRECONDITION_FAILED: [412, 'The file does not meet the request\'s precondition (If-Match, If-Unmodified-Since)'],
  BODY_TOO_LARGE: [413, 'The request body is too large'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'Send the request body as application/json, without a Content-Encoding or a Transfer-Encoding but chunked'],
  RANGE_NOT_SATISFIABLE: [416, 'The requested range is outside the file'],
  EXPECTATION_FAILED: [417, 'Only "Expect: 100-continue" is understood'],
  RATE_LIMITED: [429, 'Too many requests; retry later'],
  HEADERS_TOO_LARGE: [431, 'The request headers are too large; send fewer or shorter headers (cookies included)'],
  INTERNAL_ERROR: [500, 'Something went wrong on our side'],
  SERVICE_UNAVAILABLE: [503, 'The service is temporarily unavailable; retry later']
} as const satisfies Record<string, readonly [number, string]>

export type ErrorCode = keyof typeof catalogue

/** Every code with its status and message: the OpenAPI document lists the codes, the tests check every answer against them. */
export const errorCatalogue = Object.entries(catalogue).map(([code, [statusCode, message]]) => ({ code, statusCode, message }))

const constructors = Object.fromEntries(
  Object.entries(catalogue).map(([code, [statusCode, message]]) => [code, createError(code, message, statusCode)])
) as Record<ErrorCode, createError.FastifyErrorConstructor>

/** Builds the catalogue's error for `code`; `%s` in its message is filled from `args`. */
export function apiError (code: ErrorCode, ...args: string[]): createError.FastifyError {
  return new constructors[code](...args)
}

/** VALIDATION_FAILED for an email change without the current password (routes/users.ts and, should the address move meanwhile, UserService.updateMe). */
export function missingPasswordForNewEmail (): createError.FastifyError {
  return apiError('VALIDATION_FAILED', 'body must have property \'currentPassword\' with a new email')
}

/** MFA_NOT_ENABLED, naming what is missing: an app shows the message, and one with an app but no passkey must not read that it has no factor. */
export function mfaNotEnabled (missing: 'second factor' | 'authenticator app' | 'passkey'): createError.FastifyError {
  return apiError('MFA_NOT_ENABLED', missing)
}

/** RATE_LIMITED, with the seconds after which a retry may succeed (answered as Retry-After, RFC 9110 10.2.3). */
export function rateLimited (retryAfterSeconds: number): createError.FastifyError & { retryAfterSeconds: number } {
  return Object.assign(apiError('RATE_LIMITED'), { retryAfterSeconds: Math.max(1, Math.ceil(retryAfterSeconds)) })
}

/** The catalogue's error for `code` answered with another status where one code serves several routes (MFA_CODE_INVALID). */
export function withStatus (code: ErrorCode, statusCode: number): createError.FastifyError {
  return Object.assign(apiError(code), { statusCode })
}

/** REAUTHENTICATION_REQUIRED, with the methods POST /auth/reauthenticate accepts for this account. */
export function reauthenticationRequired (methods: string[]): createError.FastifyError & { methods: string[] } {
  return Object.assign(apiError('REAUTHENTICATION_REQUIRED'), { methods })
}

/**
 * AUTH_TOKEN_EXPIRED, naming the session of the expired token when it names one: a client whose
 * token is in an HttpOnly cookie cannot read it, and names it back when it sends the call again
 * (X-Auth-Session-Id), so that cookies replaced meanwhile by a sign-in elsewhere are refused.
 */
export function tokenExpired (sessionId: string | undefined): createError.FastifyError & { sessionId?: string } {
  return Object.assign(apiError('AUTH_TOKEN_EXPIRED'), sessionId === undefined ? {} : { sessionId })
}

/** The refusals that say the presented refresh token itself is dead: the only ones after which a browser should drop it. */
const deadRefreshTokenCodes: ReadonlySet<string> = new Set<ErrorCode>(['AUTH_REFRESH_INVALID', 'AUTH_REFRESH_EXPIRED', 'AUTH_REFRESH_REVOKED', 'AUTH_REFRESH_REUSED'])

export function isDeadRefreshToken (error: { code?: unknown }): boolean {
  return typeof error.code === 'string' && deadRefreshTokenCodes.has(error.code)
}

export function isErrorCode (value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(catalogue, value)
}
