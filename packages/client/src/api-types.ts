// The service's API as this package sees it. Every type is derived from the service's own
// schemas, so that a field renamed there breaks this package's type-check. The only file of
// the package that imports from the service, and only types: nothing of the service reaches
// a build (the build writes this file's declarations out in full, see scripts/build.mjs).
import type { Static } from '@sinclair/typebox'
import type { ErrorCode } from '../../../src/errors.js'
import type { ChangePasswordBody, ForgotPasswordBody, ResetPasswordBody, VerifyEmailBody } from '../../../src/schemas/accounts.js'
import type { LoginBody, LoginCookieResponse, LoginTokenResponse, RefreshBodyResponse, RegisterBody } from '../../../src/schemas/auth.js'
import type { ErrorResponse, User as UserSchema } from '../../../src/schemas/common.js'
import type { AccessClaims as AccessClaimsSchema, ListQuery, SessionList as SessionListSchema } from '../../../src/schemas/sessions.js'
import type { DeleteMeBody, UpdateMeBody } from '../../../src/schemas/users.js'

/** A user as the API shows it (`GET /users/me`). */
export type User = Static<typeof UserSchema>
/** The verified claims of an access token. */
export type AccessClaims = Static<typeof AccessClaimsSchema>
export type SessionList = Static<typeof SessionListSchema>
export type SessionListQuery = Partial<Static<typeof ListQuery>>
/** The error body every failure of the service answers with. */
export type ErrorBody = Static<typeof ErrorResponse>

export type RegisterInput = Static<ReturnType<typeof RegisterBody>>
/** `identifier` (email or username), `email` or `username`, and the password. */
export type LoginInput = Omit<Static<ReturnType<typeof LoginBody>>, 'transport'>
export type LoginCookieAnswer = Static<typeof LoginCookieResponse>
export type LoginTokenAnswer = Static<typeof LoginTokenResponse>
export type RefreshTokenAnswer = Static<typeof RefreshBodyResponse>
export type UpdateMeInput = Static<typeof UpdateMeBody>
export type DeleteMeInput = Static<ReturnType<typeof DeleteMeBody>>
export type ChangePasswordInput = Static<ReturnType<typeof ChangePasswordBody>>
export type ForgotPasswordInput = Static<typeof ForgotPasswordBody>
export type ResetPasswordInput = Static<ReturnType<typeof ResetPasswordBody>>
export type VerifyEmailInput = Static<typeof VerifyEmailBody>

/** A second factor the account has (mirrors DESIGN §10; the service does not answer it yet). */
export type MfaMethod = 'totp' | 'recovery_code' | 'webauthn'

/**
 * A login whose password was right, for an account with a second factor: no token and no
 * cookie yet; `POST /auth/mfa/verify` with `mfaToken` completes it. Mirrors DESIGN §10; the
 * service does not answer it yet.
 */
export type MfaChallenge = {
  mfaRequired: true
  /** Opaque, single use, valid `expiresIn` seconds, at most 5 wrong codes. */
  mfaToken: string
  methods: MfaMethod[]
  expiresIn: number
}

/** The body of `POST /auth/mfa/verify` (mirrors DESIGN §10). */
export type MfaVerifyInput =
  | { mfaToken: string, code: string }
  | { mfaToken: string, recoveryCode: string }
  | { mfaToken: string, webauthn: Record<string, unknown> }

/** The codes of DESIGN §10 that the service's catalogue does not hold yet. */
export type MfaErrorCode = 'MFA_CODE_INVALID' | 'MFA_CHALLENGE_EXPIRED' | 'MFA_ALREADY_ENABLED' | 'MFA_ENROLMENT_REQUIRED' | 'REAUTHENTICATION_REQUIRED'

/** Every `code` the service answers with (its error catalogue), and those of DESIGN §10. */
export type ServiceErrorCode = ErrorCode | MfaErrorCode
