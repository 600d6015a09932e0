// Bodies, queries and responses of the /admin routes.
import { Type } from '@sinclair/typebox'
import { auditActions } from '../services/admin/audit-actions.js'
import { lifetimeBounds } from '../services/admin/lifetime-bounds.js'
import { roles } from '../services/accounts/roles.js'
import { Username, Uuid, User, pageQuery } from './common.js'
import { ProfileChanges } from './users.js'

export const RoleName = Type.Union(roles.map(role => Type.Literal(role)))

export const AdminUser = Type.Composite([User, Type.Object({
  isActive: Type.Boolean(),
  mfaEnabled: Type.Boolean({ description: 'whether a second factor guards the login: a confirmed TOTP factor or at least one passkey' })
})], { $id: 'AdminUser', title: 'User (admin view)' })

export const UserListQuery = pageQuery({
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: 'the email or the username: a prefix of it, or all of it with match=exact' })),
  match: Type.Optional(Type.Union([Type.Literal('prefix'), Type.Literal('exact')], { description: 'how q matches: a prefix (the default) or the whole email or username' })),
  role: Type.Optional(RoleName),
  active: Type.Optional(Type.Boolean())
})

export const UserList = Type.Object({
  items: Type.Array(Type.Ref(AdminUser)),
  nextCursor: Type.Union([Type.String(), Type.Null()])
})

export const UserParams = Type.Object({ id: Uuid }, { additionalProperties: false })

export const UserSessionParams = Type.Object({ id: Uuid, sessionId: Uuid }, { additionalProperties: false })

export const ResetMailSent = Type.Object({ message: Type.String() })

export const UserChanges = Type.Object({
  role: Type.Optional(RoleName),
  isActive: Type.Optional(Type.Boolean()),
  username: Type.Optional({ ...Username, description: 'a new username (3–32 characters of A–Z a–z 0–9 . _ -, stored lower-case); an admin may give one kept for the operator\'s accounts, or take one away from an account that should no longer hold it (409 USERNAME_TAKEN when another account has it)' }),
  profile: Type.Optional(ProfileChanges)
}, { additionalProperties: false, minProperties: 1 })

const Lifetime = ({ minimum, maximum }: { minimum: number, maximum: number }, description: string) => Type.Integer({ minimum, maximum, description })

export const Settings = Type.Object({
  accessTokenTtlSeconds: Lifetime(lifetimeBounds.accessTokenTtlSeconds, 'access token lifetime: 5 s to 24 h, at most half the idle one'),
  refreshTokenIdleTtlSeconds: Lifetime(lifetimeBounds.refreshTokenIdleTtlSeconds, 'session idle lifetime: 1 min to 90 days'),
  sessionAbsoluteTtlSeconds: Lifetime(lifetimeBounds.sessionAbsoluteTtlSeconds, 'session absolute lifetime: at least the idle one, at most 365 days')
}, { title: 'Runtime settings' })

export const SettingsChanges = Type.Partial(Settings, { additionalProperties: false, minProperties: 1 })

export const AuditQuery = pageQuery({
  subjectId: Type.Optional(Uuid),
  action: Type.Optional(Type.Union(auditActions.map(action => Type.Literal(action)), { description: 'only entries of this action' }))
})

export const AuditList = Type.Object({
  items: Type.Array(Type.Object({
    id: Uuid,
    createdAt: Type.String({ format: 'date-time' }),
    action: Type.String(),
    actorId: Type.Union([Uuid, Type.Null()]),
    actorEmail: Type.Union([Type.String(), Type.Null()], { description: 'the acting user\'s address now; null with no actor, or once that user is deleted' }),
    subjectId: Type.Union([Uuid, Type.Null()]),
    subjectEmail: Type.Union([Type.String(), Type.Null()], { description: 'the address now of the user the entry is about; null with none, or once that user is deleted' }),
    ip: Type.Union([Type.String(), Type.Null()]),
    details: Type.Unknown()
  })),
  nextCursor: Type.Union([Type.String(), Type.Null()])
})
