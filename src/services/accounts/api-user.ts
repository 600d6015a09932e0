// The user as the API shows it: the shape is the TypeBox schema, the columns are `userSelect`; every query that returns a user reads them from here.
import type { Static } from '@sinclair/typebox'
import type { Prisma } from '../../generated/prisma/client.js'
import type { AdminUser as AdminUserSchema } from '../../schemas/admin.js'
import type { User } from '../../schemas/common.js'
import type { Me } from '../../schemas/mfa.js'

export type ApiUser = Static<typeof User>
/** The caller's own view: the user and the state of their second factors. */
export type OwnUser = Static<typeof Me>
/** What an admin sees: the user, whether the account is active and whether a second factor guards it. */
export type AdminUser = Static<typeof AdminUserSchema>

/** The only columns that ever leave a service: the password hash cannot reach a response. */
export const userSelect = {
  id: true,
  email: true,
  pendingEmail: true,
  username: true,
  role: true,
  emailVerifiedAt: true,
  createdAt: true,
  updatedAt: true,
  profile: { select: { displayName: true, bio: true, avatarUrl: true } }
} satisfies Prisma.UserSelect

type UserRow = Prisma.UserGetPayload<{ select: typeof userSelect }>

type Profile = NonNullable<UserRow['profile']>

// Field by field, not by rest and spread: cheaper on the hot path, and a column added to a
// select never reaches a response unnoticed.
function apiUser (row: Omit<UserRow, 'profile'>, profile: Profile | null): ApiUser {
  return {
    id: row.id,
    email: row.email,
    pendingEmail: row.pendingEmail,
    username: row.username,
    role: row.role,
    emailVerified: row.emailVerifiedAt !== null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    profile: profile ?? { displayName: null, bio: null, avatarUrl: null }
  }
}

export function toApiUser (row: UserRow): ApiUser {
  return apiUser(row, row.profile)
}

const { profile: profileSelect, ...userColumns } = userSelect

/** The same columns for hand-written statements (`u` the user, `p` the profile), and where they come from. */
export const API_USER_COLUMNS = [
  ...Object.keys(userColumns).map(column => `u."${column}"`),
  ...Object.keys(profileSelect.select).map(column => `p."${column}"`)
].join(', ')
export const API_USER_FROM = '"User" u LEFT JOIN "Profile" p ON p."userId" = u.id'

/** A row of `API_USER_COLUMNS`: the user's columns with the profile's beside them. */
export type ApiUserRow = Omit<UserRow, 'profile'> & Profile

export function apiUserOfRow (row: ApiUserRow): ApiUser {
  return apiUser(row, { displayName: row.displayName, bio: row.bio, avatarUrl: row.avatarUrl })
}

/** The caller's own view: whether a TOTP factor is confirmed, and how many recovery codes are unused. */
export const ownSelect = {
  ...userSelect,
  totpFactor: { select: { confirmedAt: true } },
  _count: { select: { recoveryCodes: { where: { usedAt: null } } } }
} satisfies Prisma.UserSelect

// The same two, for hand-written statements over `u` the user (test/routes/mfa.test.ts holds
// GET /users/me, which reads these, and PATCH, which reads ownSelect, to one answer).
export const OWN_MFA_COLUMNS = `
  EXISTS (SELECT 1 FROM "TotpFactor" t WHERE t."userId" = u.id AND t."confirmedAt" IS NOT NULL) AS totp,
  (SELECT count(*)::int FROM "RecoveryCode" r WHERE r."userId" = u.id AND r."usedAt" IS NULL) AS "recoveryCodesLeft"`

export function toOwnUser ({ totpFactor, _count, ...row }: Prisma.UserGetPayload<{ select: typeof ownSelect }>): OwnUser {
  return { ...toApiUser(row), mfa: { totp: totpFactor?.confirmedAt != null, recoveryCodesLeft: _count.recoveryCodes } }
}

export const adminSelect = { ...userSelect, isActive: true, totpFactor: { select: { confirmedAt: true } }, _count: { select: { passkeys: true } } } satisfies Prisma.UserSelect

// A passkey is a second factor too (the login asks for one once it exists): it counts here. The
// login's lookup and its challenge decide the same in their own terms (test/routes/second-factor-rule.test.ts).
export function toAdminUser (row: Prisma.UserGetPayload<{ select: typeof adminSelect }>): AdminUser {
  const { isActive, totpFactor, _count, ...rest } = row
  return { ...toApiUser(rest), isActive, mfaEnabled: totpFactor?.confirmedAt != null || _count.passkeys > 0 }
}
