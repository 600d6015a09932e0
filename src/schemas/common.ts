// Shared TypeBox primitives: identifiers, credentials, the error shape and the user as the API shows it.
import { Type, type TProperties, type TSchema } from '@sinclair/typebox'
import { errorCatalogue } from '../errors.js'
import { uuidPattern } from '../services/ids.js'
import { DEVICE_TOKEN_PATTERN } from '../services/sessions/devices.js'

// The format tells OpenAPI readers what the string is; the pattern is what is accepted.
export const Uuid = Type.String({ format: 'uuid', pattern: uuidPattern })

/** A sign-in's device token (docs/security.md, "Sign-in notices"): sent by an app, answered in token mode. */
export const DeviceToken = Type.String({
  pattern: DEVICE_TOKEN_PATTERN,
  description: 'the device token an earlier sign-in of this app answered: keep it for good (it outlives sign-outs) and send it with every sign-in, so that the owner is not mailed a notice of a new device; browsers keep it in a cookie instead'
})

/** An opaque position in a list, as the previous page's `nextCursor` gave it. */
export const Cursor = Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page' })

/**
 * A list's query: `limit` (20 when left out, filled in by the validator, so a handler always
 * sees a number), `cursor`, and the list's own filters. TypeBox has no "optional with a
 * default" and lists `limit` as required, which the OpenAPI document would repeat.
 */
export function pageQuery<T extends TProperties> (filters: T) {
  const query = Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Cursor),
    ...filters
  }, { additionalProperties: false })
  const { required, ...rest } = query as { required?: string[] }
  const stillRequired = (required ?? []).filter(key => key !== 'limit')
  return Object.assign(rest, stillRequired.length === 0 ? {} : { required: stillRequired }) as typeof query
}

const emailShape = { format: 'email', minLength: 3, maxLength: 254, examples: ['ada@example.com'] }

/** An address as it is looked up (a login, a reset asked for): any the service ever took, older rules' included. */
export const EmailLookup = Type.String(emailShape)

// A new address, beyond the format: a local part of at most 64 characters (RFC 5321
// 4.5.3.1.1: relays refuse longer ones), and a domain name whose last label begins with a
// letter, as every top-level domain does, never an IP address in any spelling getaddrinfo
// reads (10.0.0.5, 10.0.0.0x5, 0x7f.1): the relay would deliver wherever it points.
export const Email = Type.String({ ...emailShape, pattern: '^[^@]{1,64}@.+\\.[A-Za-z][A-Za-z0-9-]*$' })

// Letters, digits, '.', '_' and '-' (never '@', so a login identifier is unambiguous);
// ASCII only, which leaves no room for look-alike characters.
export const Username = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{1,30}[A-Za-z0-9]$', examples: ['ada_l'] })

export interface PasswordPolicy { minLength: number, maxLength: number }

/**
 * The most characters a password may have as typed: four times PASSWORD_MAX_LENGTH. The
 * policy counts a password as it is hashed, once normalised (NFC), and a keyboard that
 * decomposes types one character as up to three (a Korean syllable), so the same password
 * must pass here however it was typed; the bound only keeps the hash's input finite.
 */
export const typedPasswordLimit = ({ maxLength }: PasswordPolicy) => 4 * maxLength

/** A new password: its length is checked again by the service on the normalised form, and its commonness. */
export const NewPassword = (policy: PasswordPolicy) =>
  Type.String({ minLength: policy.minLength, maxLength: typedPasswordLimit(policy), description: `${policy.minLength} to ${policy.maxLength} characters, any unicode, counted once normalised to NFC (fewer then: PASSWORD_TOO_WEAK; more: VALIDATION_FAILED); what is sent may have up to ${typedPasswordLimit(policy)}; common passwords, dressed up or not, repetitive or sequential ones and the account's own email or username are refused (PASSWORD_TOO_WEAK)` })

/** A password being checked: only bounded, so an old password never locks its owner out. */
export const PresentedPassword = (policy: PasswordPolicy, description?: string) => Type.String({ minLength: 1, maxLength: typedPasswordLimit(policy), ...(description === undefined ? {} : { description }) })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ enum: errorCatalogue.map(({ code }) => code), description: 'stable machine-readable code: the catalogue in docs/api.md, "Errors", gives each its status' }),
  error: Type.String(),
  message: Type.String(),
  methods: Type.Optional(Type.Array(Type.String(), { description: 'REAUTHENTICATION_REQUIRED only: what POST /auth/reauthenticate accepts for this account ("password", "totp", "recovery_code", "webauthn")' })),
  sessionId: Type.Optional(Type.String({ format: 'uuid', description: 'AUTH_TOKEN_EXPIRED only: the session the token names, which a client of HttpOnly cookies cannot read; send the call again after a refresh with `X-Auth-Session-Id` set to it, and the service refuses it (401 AUTH_SESSION_MISMATCH) if the cookies hold another session by then' }))
}, { $id: 'ErrorResponse', title: 'Error' })

/** The OpenAPI security requirement of every authenticated route: an access token in a Bearer header, or the access cookie (plugins/swagger.ts names both schemes). */
export const security: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cookieAuth: [] }]

/** The description's note on a route behind fresh authentication. */
export const needsFreshAuthentication = 'Needs fresh authentication (403 `REAUTHENTICATION_REQUIRED` with the accepted `methods`: POST /auth/reauthenticate, then retry).'

/** The description's note on a session ended as not its owner's (session-store.ts, disownSession). */
export const DISOWNED_SESSION = 'Its device is forgotten on every session of the account, so that a sign-in from it is mailed to the owner (docs/security.md, "Sign-in notices"), an email change it staged ends with its link, and a sign-in under way whose account was read before opens no session (401 `AUTH_INVALID_CREDENTIALS`).'

/** The description's note on a route that gives the account a new way in (services/passwords/credentials.ts, assertCurrentPassword). */
export const needsCurrentPassword = 'Needs the current password, `currentPassword` (403 `INVALID_CURRENT_PASSWORD`, counted toward the account\'s login backoff: 429 `RATE_LIMITED` while it lasts): fresh authentication alone is not enough for a new way into the account, as a login\'s own token is fresh.'

export const needsProvenAddress = 'Only once the account\'s email address is verified: 403 `EMAIL_NOT_VERIFIED` before (POST /auth/email/resend mails a new link).'

/** Which of a route's answers set the auth cookies (a sign-in's the device cookie too), and which clear them (some, as their description says, only in a case). */
export type AuthCookieAnswers = Partial<Record<number, 'set' | 'signed_in' | 'cleared'>>

// Marks them on the route's schema, for the OpenAPI document's Set-Cookie (plugins/swagger.ts).
export const AUTH_COOKIES = 'x-auth-cookies'

export function authCookies (answers: AuthCookieAnswers): { [AUTH_COOKIES]: AuthCookieAnswers } {
  return { [AUTH_COOKIES]: answers }
}

/**
 * Which of a route's statuses are only answered before its rate limits run (`beforeLimits`:
 * no `X-RateLimit-*`), and which only by the HTTP server, to a request it could not read
 * (`beforeRequest`: no `X-Request-Id` either). The error handler, which adds those statuses
 * to every route, marks them on its schema for the OpenAPI document (plugins/swagger.ts).
 */
export const EARLY_ANSWERS = 'x-early-answers'

export interface EarlyAnswers { beforeLimits: number[], beforeRequest: number[] }

/** Response schemas for the error statuses a route can answer. */
export function errorResponses (...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map(status => [status, Type.Ref(ErrorResponse)]))
}

export const Profile = Type.Object({
  displayName: Type.Union([Type.String(), Type.Null()]),
  bio: Type.Union([Type.String(), Type.Null()]),
  avatarUrl: Type.Union([Type.String(), Type.Null()])
})

export const User = Type.Object({
  id: Uuid,
  email: Type.String(),
  pendingEmail: Type.Union([Type.String(), Type.Null()]),
  username: Type.Union([Type.String(), Type.Null()]),
  role: Type.String(),
  emailVerified: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  profile: Profile
}, { $id: 'User', title: 'User' })
