// Bodies and responses of the /auth routes.
import { Type } from '@sinclair/typebox'
import { DeviceToken, Email, NewPassword, PresentedPassword, User, Username, type PasswordPolicy } from './common.js'
import { Transport } from './mfa.js'
import { DEVICE_TOKEN_PATTERN } from '../services/sessions/devices.js'

export const RegisterBody = (policy: PasswordPolicy) => Type.Object({
  email: Email,
  password: NewPassword(policy),
  username: Type.Optional(Username),
  displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 }))
}, { additionalProperties: false })

export const RegisterResponse = Type.Object({ user: Type.Ref(User) })

export const LoginBody = (policy: PasswordPolicy) => Type.Object({
  identifier: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'email or username' })),
  email: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
  username: Type.Optional(Type.String({ minLength: 1, maxLength: 254 })),
  password: PresentedPassword(policy),
  transport: Type.Optional(Transport),
  deviceToken: Type.Optional(DeviceToken)
}, {
  additionalProperties: false,
  // Exactly one way of naming the account.
  oneOf: [{ required: ['identifier'] }, { required: ['email'] }, { required: ['username'] }]
})

// The session the tokens of an answer belong to, in every transport.
const SessionId = Type.String({ format: 'uuid', description: 'the session these tokens belong to (the access token\'s `sid`; GET /auth/sessions lists it by this id)' })

export const LoginTokenResponse = Type.Object({
  sessionId: SessionId,
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' }),
  user: Type.Ref(User),
  deviceToken: Type.String({ pattern: DEVICE_TOKEN_PATTERN, description: 'this device\'s token, the one sent or a new one: keep it for good and send it with the next sign-ins (docs/security.md, "Sign-in notices")' })
}, { title: 'Tokens in the body' })

export const LoginCookieResponse = Type.Object({
  sessionId: SessionId,
  user: Type.Ref(User),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
}, { title: 'Tokens in HttpOnly cookies' })

export const RefreshTokenBody = Type.Object({
  refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'omit to use the refresh cookie' }))
}, { additionalProperties: false })

export const RefreshBodyResponse = Type.Object({
  sessionId: SessionId,
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
}, { title: 'Tokens in the body' })

export const RefreshCookieResponse = Type.Object({
  sessionId: SessionId,
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
}, { title: 'Tokens in HttpOnly cookies' })
