// The service's API as this package sees it. Every type is derived from the service's own
// schemas, so that a field renamed there breaks this package's type-check. The only file of
// the package that imports from the service, and only types: nothing of the service reaches
// a build (the build writes this file's declarations out in full, see scripts/build.mjs).
import type { Static } from '@sinclair/typebox'
import type { ErrorCode } from '../../../src/errors.js'
import type { ChangePasswordBody, CurrentPasswordBody, ForgotPasswordBody, ResetPasswordBody, VerifyEmailBody } from '../../../src/schemas/accounts.js'
import type { LoginBody, LoginCookieResponse, LoginTokenResponse, RefreshBodyResponse, RegisterBody } from '../../../src/schemas/auth.js'
import type { ErrorResponse, User as UserSchema } from '../../../src/schemas/common.js'
import type { AccessClaims as AccessClaimsSchema, ListQuery, SessionList as SessionListSchema } from '../../../src/schemas/sessions.js'
import type {
  Me as MeSchema, MfaChallengeResponse, MfaMethod as MfaMethodSchema, MfaVerifyBody, ReauthenticateBody, ReauthenticatedBodyResponse,
  ReauthenticationMethod as ReauthenticationMethodSchema, RecoveryCodes, TotpConfirmBody, TotpEnrolment
} from '../../../src/schemas/mfa.js'
import type {
  MfaWebauthnOptionsBody, Passkey as PasskeySchema, PasskeyAssertion as PasskeyAssertionSchema, PasskeyCreationOptions, PasskeyLoginBody, PasskeyRequestOptions,
  RegisterPasskeyBody, RenamePasskeyBody
} from '../../../src/schemas/passkeys.js'
import type { ActivityList as ActivityListSchema, DeleteMeBody, UpdateMeBody } from '../../../src/schemas/users.js'

/** A user as the API shows it (in a login answer, to admins). */
export type User = Static<typeof UserSchema>
/** The signed-in user's own view (`GET /users/me`): the user and their second factors. */
export type Me = Static<typeof MeSchema>
/** The verified claims of an access token. */
export type AccessClaims = Static<typeof AccessClaimsSchema>
export type SessionList = Static<typeof SessionListSchema>
export type SessionListQuery = Partial<Static<typeof ListQuery>>
/** What happened to the user's account (`GET /users/me/activity`), newest first, a page at a time. */
export type ActivityList = Static<typeof ActivityListSchema>
export type ActivityQuery = Partial<Static<typeof ListQuery>>
/** The error body every failure of the service answers with. */
export type ErrorBody = Static<typeof ErrorResponse>

export type RegisterInput = Static<ReturnType<typeof RegisterBody>>
/**
 * `identifier` (email or username), `email` or `username`, and the password. Without `transport`
 * (each mode of this client decides that itself) nor `deviceToken` (the token client sends the
 * one its storage keeps).
 */
export type LoginInput = Omit<Static<ReturnType<typeof LoginBody>>, 'transport' | 'deviceToken'>
export type LoginCookieAnswer = Static<typeof LoginCookieResponse>
export type LoginTokenAnswer = Static<typeof LoginTokenResponse>
export type RefreshTokenAnswer = Static<typeof RefreshBodyResponse>
/** A reauthentication's answer in token mode: the new access token, the one that counts as fresh. */
export type ReauthenticatedTokenAnswer = Static<typeof ReauthenticatedBodyResponse>
export type UpdateMeInput = Static<ReturnType<typeof UpdateMeBody>>
export type DeleteMeInput = Static<ReturnType<typeof DeleteMeBody>>
export type ChangePasswordInput = Static<ReturnType<typeof ChangePasswordBody>>
export type ForgotPasswordInput = Static<typeof ForgotPasswordBody>
export type ResetPasswordInput = Static<ReturnType<typeof ResetPasswordBody>>
export type VerifyEmailInput = Static<typeof VerifyEmailBody>

/** A second-factor method a login challenge accepts. */
export type MfaMethod = Static<typeof MfaMethodSchema>

/**
 * A login whose password was right, for an account with a second factor: no token and no
 * cookie yet; `POST /auth/mfa/verify` with `mfaToken` completes it (single use, valid
 * `expiresIn` seconds, at most 5 wrong codes).
 */
export type MfaChallenge = Static<typeof MfaChallengeResponse>

/**
 * The body of `POST /auth/mfa/verify`: the challenge's token and exactly one proof. Without
 * `transport` nor `deviceToken`, as `LoginInput`. (Inline rather than a generic helper: the
 * build writes every alias here out in full.)
 */
export type MfaVerifyInput = Static<typeof MfaVerifyBody> extends infer Body ? Body extends unknown ? Omit<Body, 'transport' | 'deviceToken'> : never : never
/** The body of `POST /auth/reauthenticate`: exactly one of password, code or recovery code. */
export type ReauthenticateInput = Static<ReturnType<typeof ReauthenticateBody>>
/** A method `POST /auth/reauthenticate` accepts (the `methods` of a 403 REAUTHENTICATION_REQUIRED). */
export type ReauthenticationMethod = Static<typeof ReauthenticationMethodSchema>
/** The current password, which setting up an authenticator app or a passkey asks (a session's token alone is not enough). */
export type CurrentPasswordInput = Static<ReturnType<typeof CurrentPasswordBody>>
export type TotpEnrolmentAnswer = Static<typeof TotpEnrolment>
export type TotpConfirmInput = Static<typeof TotpConfirmBody>
export type RecoveryCodesAnswer = Static<typeof RecoveryCodes>

/** A registered passkey, as `GET /auth/passkeys` lists it. */
export type Passkey = Static<typeof PasskeySchema>
/** For `PublicKeyCredential.parseCreationOptionsFromJSON()` (registration). */
export type PasskeyCreationOptionsAnswer = Static<typeof PasskeyCreationOptions>
/** For `PublicKeyCredential.parseRequestOptionsFromJSON()` (sign-in, second factor, reauthentication). */
export type PasskeyRequestOptionsAnswer = Static<typeof PasskeyRequestOptions>
/** `PublicKeyCredential.toJSON()` of `navigator.credentials.get()`. */
export type PasskeyAssertion = Static<typeof PasskeyAssertionSchema>
/** `{response, name?}`: `response` is `PublicKeyCredential.toJSON()` of `navigator.credentials.create()`. */
export type RegisterPasskeyInput = Static<typeof RegisterPasskeyBody>
export type RenamePasskeyInput = Static<typeof RenamePasskeyBody>
/** `{response}`: `PublicKeyCredential.toJSON()` of `navigator.credentials.get()` with `passkeyLoginOptions()`; without `transport` nor `deviceToken`, as `LoginInput`. */
export type PasskeyLoginInput = Omit<Static<typeof PasskeyLoginBody>, 'transport' | 'deviceToken'>
/** `{mfaToken}` of a login that answered `mfaRequired` with `webauthn` among its `methods`. */
export type MfaPasskeyOptionsInput = Static<typeof MfaWebauthnOptionsBody>

/** Every `code` the service answers with (its error catalogue). */
export type ServiceErrorCode = ErrorCode
