// Bodies and responses of the /users routes.
import { Type } from '@sinclair/typebox'
import { Email, PresentedPassword, Username, type PasswordPolicy } from './common.js'

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])

export const ProfileChanges = Type.Object({
  displayName: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100 }))),
  bio: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
  avatarUrl: Type.Optional(Nullable(Type.String({ format: 'uri', pattern: '^https://', maxLength: 2048 })))
}, { additionalProperties: false, minProperties: 1 })

export const UpdateMeBody = Type.Object({
  username: Type.Optional(Username),
  // Becomes `pendingEmail` until confirmed through the link mailed to it.
  email: Type.Optional(Email),
  profile: Type.Optional(ProfileChanges)
}, { additionalProperties: false, minProperties: 1 })

export const DeleteMeBody = (policy: PasswordPolicy) => Type.Object({
  password: PresentedPassword(policy)
}, { additionalProperties: false })
