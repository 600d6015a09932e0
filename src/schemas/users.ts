// Bodies and responses of the /users routes.
import { Type } from '@sinclair/typebox'
import { Email, PresentedPassword, Username, Uuid, type PasswordPolicy } from './common.js'

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])

export const ProfileChanges = Type.Object({
  displayName: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100 }))),
  bio: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
  avatarUrl: Type.Optional(Nullable(Type.String({ format: 'uri', pattern: '^https://', maxLength: 2048 })))
}, { additionalProperties: false, minProperties: 1 })

export const UpdateMeBody = (policy: PasswordPolicy) => Type.Object({
  username: Type.Optional(Username),
  // Becomes `pendingEmail` until confirmed through the link mailed to it.
  email: Type.Optional(Email),
  currentPassword: Type.Optional(PresentedPassword(policy, 'needed with a new `email`, checked whenever sent with one, refused without one')),
  profile: Type.Optional(ProfileChanges)
}, { additionalProperties: false, minProperties: 1 })

export const DeleteMeBody = (policy: PasswordPolicy) => Type.Object({
  password: PresentedPassword(policy)
}, { additionalProperties: false })

export const ActivityList = Type.Object({
  items: Type.Array(Type.Object({
    id: Uuid,
    createdAt: Type.String({ format: 'date-time' }),
    action: Type.String({ description: 'one of the audit actions listed in docs/administration.md, Roles and administration' }),
    by: Type.Union([Type.Literal('self'), Type.Literal('admin'), Type.Null()], { description: '`self`: whoever proved the account: its password or passkey (a registration, a login, a second step asked for) or a session of it; `admin`: an admin (never which one); null: nobody who proved it (a wrong attempt, whoever held a mailed link, the operator\'s command line, the service itself)' }),
    ip: Type.Union([Type.String(), Type.Null()], { description: 'where the request came from; null for an admin\'s' }),
    details: Type.Unknown()
  })),
  nextCursor: Type.Union([Type.String(), Type.Null()])
})
