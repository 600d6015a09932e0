// Bodies and responses of the session routes: claims, token verification, the caller's sessions.
import { Type } from '@sinclair/typebox'
import { Uuid, pageQuery } from './common.js'

export const AccessClaims = Type.Object({
  sub: Uuid,
  sid: Uuid,
  role: Type.String(),
  email_verified: Type.Boolean({ description: 'whether the user has verified their email address' }),
  amr: Type.Optional(Type.Array(Type.String(), { description: 'RFC 8176 methods of the login that opened the session: ["pwd"]; ["pwd", "otp", "mfa"] after a TOTP code; ["pwd", "mfa"] after a recovery code; ["pwd", "hwk", "user", "mfa"] after a passkey as the second factor (without "user" when the authenticator did not verify the user); ["hwk", "user", "mfa"] for a passkey sign-in without a password; kept by every refresh (absent only from tokens issued before this claim existed)' })),
  auth_time: Type.Optional(Type.Integer({ description: 'when the user last authenticated on the session (seconds since the epoch), as OpenID Connect means it: the login, or the latest POST /auth/reauthenticate; kept by every refresh until a reauthentication moves it. Only the token that authentication answered counts as freshly authenticated, not those a refresh mints' })),
  client_id: Type.Optional(Type.String({ description: 'RFC 9068\'s client_id: the audience, this service having no registry of OAuth clients (absent only from tokens issued before this claim existed)' })),
  iss: Type.String(),
  aud: Type.String(),
  iat: Type.Integer(),
  exp: Type.Integer(),
  jti: Type.String()
}, { $id: 'AccessClaims', title: 'Access token claims' })

export const VerifyBody = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096 })
}, { additionalProperties: false })

export const VerifyResponse = Type.Object({
  valid: Type.Literal(true),
  payload: Type.Ref(AccessClaims)
})

export const SessionItem = Type.Object({
  id: Uuid,
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  current: Type.Boolean({ description: 'the session of the token making this request' })
})

export const ListQuery = pageQuery({})

export const SessionList = Type.Object({
  items: Type.Array(SessionItem),
  nextCursor: Type.Union([Type.String(), Type.Null()])
})

export const SessionParams = Type.Object({ id: Uuid }, { additionalProperties: false })
