// Bodies and responses of the second factor: enrolment, recovery codes, the login's second step, reauthentication.
import { Type } from '@sinclair/typebox'
import { DeviceToken, PresentedPassword, User, type PasswordPolicy } from './common.js'
import { PasskeyAssertion } from './passkeys.js'

/** Six digits, as an authenticator app shows them (a space in the middle is allowed). */
export const TotpCode = Type.String({ pattern: '^[0-9]{3} ?[0-9]{3}$', description: 'the 6-digit code of the authenticator app', examples: ['123456'] })

/** As printed: case, spaces and dashes do not matter, and O, I, L are read as 0, 1, 1 (Crockford's base32). */
export const RecoveryCode = Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z -]+$', description: 'one of the recovery codes, e.g. 7k2m-9xqa-c4rt-h8vp; case, spaces and dashes do not matter, and O is read as 0, I and L as 1', examples: ['7k2m-9xqa-c4rt-h8vp'] })

const MfaToken = Type.String({ minLength: 1, maxLength: 128, description: 'the mfaToken of the login answer' })

// The challenge's methods.
export const MfaMethod = Type.Union([Type.Literal('totp'), Type.Literal('recovery_code'), Type.Literal('webauthn')])

// What reauthentication accepts.
export const ReauthenticationMethod = Type.Union([Type.Literal('password'), Type.Literal('totp'), Type.Literal('recovery_code'), Type.Literal('webauthn')])

export const Transport = Type.Literal('cookie', { description: 'ask for HttpOnly cookies instead of tokens in the body (browsers always get cookies)' })

export const MfaChallengeResponse = Type.Object({
  mfaRequired: Type.Literal(true),
  mfaToken: Type.String({ description: 'opaque, single use; send it to POST /auth/mfa/verify with one code' }),
  methods: Type.Array(MfaMethod, { description: 'what POST /auth/mfa/verify accepts for this account' }),
  expiresIn: Type.Integer({ description: 'seconds the challenge lives (300)' })
}, { title: 'Second factor required' })

// One member per method, so a body names exactly one proof.
export const MfaVerifyBody = Type.Union([
  Type.Object({ mfaToken: MfaToken, code: TotpCode, transport: Type.Optional(Transport), deviceToken: Type.Optional(DeviceToken) }, { additionalProperties: false, title: 'With a TOTP code' }),
  Type.Object({ mfaToken: MfaToken, recoveryCode: RecoveryCode, transport: Type.Optional(Transport), deviceToken: Type.Optional(DeviceToken) }, { additionalProperties: false, title: 'With a recovery code' }),
  Type.Object({ mfaToken: MfaToken, webauthn: PasskeyAssertion, transport: Type.Optional(Transport), deviceToken: Type.Optional(DeviceToken) }, { additionalProperties: false, title: 'With a passkey' })
])

export const ReauthenticateBody = (policy: PasswordPolicy) => Type.Union([
  Type.Object({ password: PresentedPassword(policy) }, { additionalProperties: false, title: 'With the password' }),
  Type.Object({ code: TotpCode }, { additionalProperties: false, title: 'With a TOTP code' }),
  Type.Object({ recoveryCode: RecoveryCode }, { additionalProperties: false, title: 'With a recovery code' }),
  Type.Object({ webauthn: PasskeyAssertion }, { additionalProperties: false, title: 'With a passkey' })
])

/** A reauthentication's answer: the new access token, the one that counts as fresh, in the transport the caller used. */
export const ReauthenticatedBodyResponse = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
}, { title: 'Access token in the body (the caller sent a Bearer token)' })

export const ReauthenticatedCookieResponse = Type.Object({
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
}, { title: 'Access token in its HttpOnly cookie (the caller sent the cookie)' })

export const TotpEnrolment = Type.Object({
  secret: Type.String({ description: 'base32, for typing into an authenticator app by hand' }),
  otpauthUri: Type.String({ description: 'otpauth://totp/… (Key Uri Format), what the QR code holds' }),
  qrSvg: Type.String({ description: 'the QR code of otpauthUri as an SVG document, rendered by the service' })
}, { title: 'TOTP enrolment' })

export const TotpConfirmBody = Type.Object({ code: TotpCode }, { additionalProperties: false })

export const RecoveryCodes = Type.Object({
  recoveryCodes: Type.Array(Type.String(), { minItems: 10, maxItems: 10, description: 'shown this once: each works once; they replace any earlier set' })
}, { title: 'Recovery codes' })

export const MfaStatus = Type.Object({
  totp: Type.Boolean({ description: 'whether a confirmed TOTP factor guards the login' }),
  recoveryCodesLeft: Type.Integer({ minimum: 0, description: 'unused recovery codes' })
})

/** GET /users/me: the user, and their second factors. */
export const Me = Type.Composite([User, Type.Object({ mfa: MfaStatus })], { $id: 'Me', title: 'User (own view)' })
