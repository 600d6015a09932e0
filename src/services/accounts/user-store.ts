// Every query of the User table and its Profile: the Prisma queries, and the hot paths' statements on the pool (a login's lookup, the caller's user).
import type { Static } from '@sinclair/typebox'
import { iso, statement, type Sql } from '../../db/sql.js'
import { isRecordNotFound } from '../../db/refusals.js'
import type { Db, Transaction } from '../../db/prisma.js'
import { Prisma } from '../../generated/prisma/client.js'
import type { UserChanges } from '../../schemas/admin.js'
import { liveSessionSql, liveSessionWhere } from '../sessions/liveness.js'
import { API_USER_COLUMNS, API_USER_FROM, OWN_MFA_COLUMNS, adminSelect, ownSelect, userSelect, type ApiUserRow } from './api-user.js'
import type { Role } from './roles.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { NewTokenRow } from '../tokens/one-time-tokens.js'

/** The user `id` with `select`'s columns, or null. */
export async function userById<S extends Prisma.UserSelect> (db: Db, id: string, select: S) {
  return await db.user.findUnique({ where: { id }, select })
}

/** The addresses of those of `ids` whose users still exist, by id. */
export async function emailsOf (db: Db, ids: string[]): Promise<Map<string, string>> {
  const rows = ids.length === 0 ? [] : await db.user.findMany({ where: { id: { in: ids } }, select: { id: true, email: true } })
  return new Map(rows.map(row => [row.id, row.email]))
}

/** The user of that (canonical) address with `select`'s columns, or null. */
export async function userByEmail<S extends Prisma.UserSelect> (db: Db, email: string, select: S) {
  return await db.user.findUnique({ where: { email }, select })
}

/** The user with `select`'s columns, only while active and while `sessionId` is one of their live sessions (see liveness.ts). */
export async function liveCallerOf<S extends Prisma.UserSelect> (db: Db, userId: string, sessionId: string, at: Date, select: S) {
  return await db.user.findFirst({ where: { id: userId, sessions: { some: { id: sessionId, ...liveSessionWhere(at) } } }, select })
}

/**
 * Counts a sign-out of the user's sessions on their row (`signOutGeneration`; see
 * endSessionsOfUser, disownSession): a sign-in that read the count before it opens no session
 * after it. By hand, so that the user's `updatedAt` stays what the API shows: nothing of the
 * user changed.
 */
export async function countSignOut (tx: Transaction, id: string): Promise<void> {
  await tx.$executeRaw`UPDATE "User" SET "signOutGeneration" = "signOutGeneration" + 1 WHERE id = ${id}::uuid`
}

/** The user's second factors as counts: a confirmed app, passkeys, unused recovery codes; null for an unknown user (see mfa/second-factors.ts). */
export async function factorCountsOf (db: Db, id: string) {
  return await db.user.findUnique({
    where: { id },
    select: { totpFactor: { select: { confirmedAt: true } }, _count: { select: { passkeys: true, recoveryCodes: { where: { usedAt: null } } } } }
  })
}

/** Counts the user's being left with no second factor (`secondFactorGeneration`), by hand as countSignOut. */
export async function countFactorsGone (tx: Transaction, id: string): Promise<void> {
  await tx.$executeRaw`UPDATE "User" SET "secondFactorGeneration" = "secondFactorGeneration" + 1 WHERE id = ${id}::uuid`
}

/** Locks the user's row until the transaction ends: writers of one user's rows take their turn. */
export async function lockUser (tx: Transaction, id: string): Promise<boolean> {
  const rows = await tx.$queryRaw<unknown[]>`SELECT 1 FROM "User" WHERE id = ${id}::uuid FOR UPDATE`
  return rows.length === 1
}

/** Holds the user's row against changes (a role, a state, a sign-out count) until the transaction ends, without keeping others from reading or sharing it. */
export async function shareUser (tx: Transaction, id: string): Promise<void> {
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE id = ${id}::uuid FOR SHARE`
}

/** Active admins, but for `except`: the last one may be neither demoted, deactivated nor deleted. */
export async function activeAdminCount (db: Db, except?: string): Promise<number> {
  return await db.user.count({ where: { role: 'admin', isActive: true, ...(except === undefined ? {} : { id: { not: except } }) } })
}

export async function adminViewOf (db: Db, id: string) {
  return await db.user.findUnique({ where: { id }, select: adminSelect })
}

/** What an admin may filter the list by; `text` is matched literally against the email and the username, whole or as a prefix. */
export interface AdminUserFilter {
  text?: { value: string, exact: boolean } | undefined
  role?: Role | undefined
  active?: boolean | undefined
  /** Where the page starts (see pagination.ts). */
  after: Prisma.UserWhereInput
}

function matching ({ value, exact }: { value: string, exact: boolean }): Prisma.StringFilter {
  if (exact) return { equals: value }
  // Prisma's startsWith is a LIKE: its wildcards must match themselves (regression: q=% listed everyone).
  return { startsWith: value.replace(/[\\%_]/g, '\\$&') }
}

/** Newest first, `take` rows. */
export async function adminListPage (db: Db, { text, role, active, after }: AdminUserFilter, take: number) {
  return await db.user.findMany({
    where: {
      // AND, not a spread: the search and the cursor are both OR-clauses.
      AND: [
        text === undefined ? {} : { OR: [{ email: matching(text) }, { username: matching(text) }] },
        role === undefined ? {} : { role },
        active === undefined ? {} : { isActive: active },
        after
      ]
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take,
    select: adminSelect
  })
}

/** Role, active state and profile, as an admin changes them at `at`; the admin view after. */
export async function updateByAdmin (db: Db, id: string, changes: Static<typeof UserChanges>, at: Date) {
  return await db.user.update({
    where: { id },
    data: {
      ...(changes.role === undefined ? {} : { role: changes.role }),
      ...(changes.isActive === undefined ? {} : { isActive: changes.isActive }),
      ...(changes.username === undefined ? {} : { username: changes.username }),
      ...(changes.profile === undefined ? {} : profileChange(changes.profile, at))
    },
    select: adminSelect
  })
}

/** The user's own changes (username, profile, pending address) at `at`; their own view after. */
export async function updateOwnUser (db: Db, id: string, changes: { username?: string, pendingEmail?: string | null, profile?: Prisma.ProfileCreateWithoutUserInput }, at: Date) {
  const data: Prisma.UserUpdateInput = {}
  if (changes.username !== undefined) data.username = changes.username
  if (changes.pendingEmail !== undefined) data.pendingEmail = changes.pendingEmail
  if (changes.profile !== undefined) Object.assign(data, profileChange(changes.profile, at))
  return await db.user.update({ where: { id }, data, select: ownSelect })
}

/**
 * A profile written through its user. The profile is part of the user as the API shows it, so
 * the user's `updatedAt` moves with it: Prisma moves it only when the user's own columns change
 * (regression: a profile-only change kept the old `updatedAt`). The schema refuses an empty one.
 */
function profileChange (profile: Prisma.ProfileCreateWithoutUserInput, at: Date): Prisma.UserUpdateInput {
  return { profile: { upsert: { create: profile, update: profile } }, updatedAt: at }
}

/** Role admin; active again only with `reactivate` (a deactivated account never comes back unasked: services/admin/first-admin.ts). */
export async function promoteToAdmin (db: Db, id: string, reactivate: boolean) {
  return await db.user.update({ where: { id }, data: { role: 'admin', ...(reactivate ? { isActive: true } : {}) }, select: userSelect })
}

/**
 * Deletes the user; the schema's ON DELETE CASCADE takes everything of theirs with it. With
 * `passwordHash`, only while the hash is still that one (the owner's deletion, proven against
 * it: a reset committed meanwhile wins). The address the account had, and whether it was
 * proven; null when nothing was deleted.
 */
export async function deleteUser (db: Db, id: string, passwordHash?: string): Promise<{ email: string, username: string | null, emailVerifiedAt: Date | null } | null> {
  try {
    return await db.user.delete({ where: { id, ...(passwordHash === undefined ? {} : { passwordHash }) }, select: { email: true, username: true, emailVerifiedAt: true } })
  } catch (error) {
    if (isRecordNotFound(error)) return null
    throw error
  }
}

/** Replaces the hash only if it is still `current`: a password changed meanwhile is never reverted. True when it did. */
export async function replacePasswordHash (db: Db, id: string, current: string, passwordHash: string): Promise<boolean> {
  const { count } = await db.user.updateMany({ where: { id, passwordHash: current }, data: { passwordHash } })
  return count === 1
}

/** A reset: the new hash, and the address it was mailed to verified. Only while the account is active and still has that address (else Prisma's P2025). */
export async function resetPassword (db: Db, id: string, email: string, passwordHash: string, emailVerifiedAt: Date): Promise<void> {
  await db.user.update({ where: { id, email, isActive: true }, data: { passwordHash, emailVerifiedAt } })
}

export async function markEmailVerified (db: Db, id: string, at: Date): Promise<void> {
  await db.user.update({ where: { id }, data: { emailVerifiedAt: at } })
}

/** A staged email change is dropped: its link no longer matches a pending address. */
export async function cancelEmailChange (db: Db, id: string): Promise<void> {
  // updateMany: a user deleted meanwhile has nothing left to cancel (regression: a 500 when a
  // sign-out everywhere raced the account's deletion).
  await db.user.updateMany({ where: { id }, data: { pendingEmail: null } })
}

/**
 * Ends up to `batch` email changes whose link no longer works at `at` (expired, used or
 * killed, or for a session that has ended): the address nobody proved is not kept past its
 * link, nor mailed again by a resend.
 * Skips rows in use: the retention pass's. How many.
 */
export async function clearAbandonedEmailChanges (db: Db, at: Date, batch: number): Promise<number> {
  // "Unsafe" only in name: the text is a constant and the values are parameters; the tagged
  // form could not take the one liveness rule's SQL (liveSessionSql).
  const { text, values } = abandonedEmailChangesClearing(at, batch)
  return await db.$executeRawUnsafe(text, ...values)
}

/**
 * Reads the few users with a change pending by a partial index (User_pendingEmail_idx), not
 * every user, each hour (test/plugins/retention.test.ts reads its plan).
 */
export const abandonedEmailChangesClearing = (at: Date, batch: number) => ({ text: CLEAR_ABANDONED_EMAIL_CHANGES, values: [iso(at), batch] })

const CLEAR_ABANDONED_EMAIL_CHANGES = `UPDATE "User" SET "pendingEmail" = NULL, "updatedAt" = $1::timestamp(3) WHERE id IN (
  SELECT u.id FROM "User" u WHERE u."pendingEmail" IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM "OneTimeToken" o WHERE o."userId" = u.id AND o.purpose = 'email_change' AND o.email = u."pendingEmail" AND o."usedAt" IS NULL AND o."expiresAt" > $1::timestamp(3)
      AND (o."sessionId" IS NULL OR EXISTS (SELECT 1 FROM "Session" s WHERE s.id = o."sessionId" AND ${liveSessionSql('s', '$1::timestamp(3)')})))
  LIMIT $2 FOR UPDATE SKIP LOCKED)`

/** The pending address becomes the address, verified. */
export async function confirmEmailChange (db: Db, id: string, email: string, at: Date): Promise<void> {
  await db.user.update({ where: { id }, data: { email, pendingEmail: null, emailVerifiedAt: at } })
}

// A new account in one statement: the user, their profile and, on registration, the
// verification token, its mail (rows built by their own modules: `newRow`, `rowOf`) and the
// registration's audit entry.

/** What a registration writes with its account: the verification token, the outbox row of its mail, and its audit entry. */
export interface RegistrationRows {
  token: NewTokenRow
  mail: ReturnType<MailOutbox['rowOf']>
  audit: { id: string, ip: string }
}

export interface NewAccount {
  id: string
  email: string
  username: string | null
  passwordHash: string
  role: string
  emailVerifiedAt: Date | null
  createdAt: Date
  displayName: string | null
}

// Timestamps go in as ISO strings cast to timestamp(3): the UTC wall-clock time, as Prisma stores it.
const USER_AND_PROFILE = `
  WITH u AS (
    INSERT INTO "User" (id, email, username, "passwordHash", role, "emailVerifiedAt", "createdAt", "updatedAt")
    VALUES ($1::uuid, $2, $3, $4, $5::"Role", $6::timestamp(3), $7::timestamp(3), $7::timestamp(3))
    RETURNING id),
  p AS (INSERT INTO "Profile" ("userId", "displayName", "updatedAt") SELECT id, $8, $7::timestamp(3) FROM u)`

// The audit entry is written here rather than through audit.ts: one more round trip would cost
// the registration, a benchmarked hot path (docs/benchmarks.md).
const TOKEN_AND_MAIL = `,
  t AS (
    INSERT INTO "OneTimeToken" (id, "userId", purpose, "tokenHash", email, "expiresAt", "createdAt")
    SELECT $9::uuid, id, $10::"TokenPurpose", $11, $12, $13::timestamp(3), $14::timestamp(3) FROM u
    RETURNING id),
  a AS (
    INSERT INTO "AuditEvent" (id, "createdAt", action, "actorId", "subjectId", ip, details)
    SELECT $20::uuid, $7::timestamp(3), 'user.registered', id, id, $21, '{}'::jsonb FROM u)
  INSERT INTO "OutboxMail" (id, kind, recipient, data, "tokenId", "nextAttemptAt", "createdAt")
  SELECT $15::uuid, $16::"MailKind", $17, $18::jsonb, id, $19::timestamp(3), $7::timestamp(3) FROM t`

const insertUser = statement('users.insert', `${USER_AND_PROFILE} SELECT 1`)
const insertUserWithToken = statement('users.insert_with_token', `${USER_AND_PROFILE}${TOKEN_AND_MAIL}`)

/**
 * Nested writes through Prisma's client cost a transaction of six round trips; this is one
 * statement, so one implicit transaction: all of it is written, or none (a taken email). On
 * the pool, planned once per connection: through Prisma's $executeRaw it cost a registration
 * about half a millisecond more CPU (docs/benchmarks.md, "POST /auth/register").
 */
export async function insertAccount (sql: Sql, account: NewAccount, first?: RegistrationRows): Promise<void> {
  const values: unknown[] = [account.id, account.email, account.username, account.passwordHash, account.role, account.emailVerifiedAt === null ? null : iso(account.emailVerifiedAt), iso(account.createdAt), account.displayName]
  if (first === undefined) {
    await insertUser(sql, values)
    return
  }
  const { token, mail, audit } = first
  values.push(token.id, token.purpose, token.tokenHash, token.email, iso(token.expiresAt), iso(token.createdAt),
    mail.id, mail.kind, mail.recipient, mail.data === undefined ? null : JSON.stringify(mail.data), iso(mail.nextAttemptAt),
    audit.id, audit.ip)
  await insertUserWithToken(sql, values)
}

// The hot paths' statements, on the pool: sent through Prisma's $queryRaw instead, /users/me
// served about a third as many requests and a login a tenth fewer (docs/benchmarks.md, "The
// hot paths' statements").

/** The caller's user, second factors included. */
export type LiveCallerRow = ApiUserRow & { totp: boolean, recoveryCodesLeft: number }

// The user, only while active and while `sid` is one of their live sessions: one round trip.
// It reads "TotpFactor" and "RecoveryCode" for /users/me's `mfa`.
const selectLiveCaller = statement<LiveCallerRow>('users.live_caller', `
  SELECT ${API_USER_COLUMNS}, ${OWN_MFA_COLUMNS}
  FROM ${API_USER_FROM}
  WHERE u.id = $1 AND EXISTS (SELECT 1 FROM "Session" s WHERE s.id = $2 AND s."userId" = u.id AND ${liveSessionSql('s', '$3')})`)

export async function liveCallerRow (sql: Sql, userId: string, sessionId: string, at: Date): Promise<LiveCallerRow | null> {
  return (await selectLiveCaller(sql, [userId, sessionId, iso(at)])).rows[0] ?? null
}

/** What deciding a login needs, and nothing that takes another query to read (the profile). */
export interface Credentials {
  id: string
  email: string
  username: string | null
  role: string
  emailVerifiedAt: Date | null
  passwordHash: string
  isActive: boolean
  signOutGeneration: number
  /** Whether a confirmed second factor guards the account: read in the same statement for every login, known or not (the rule the admin's view and the challenge share: test/routes/second-factor-rule.test.ts). */
  mfaEnabled: boolean
}

/** A login's lookup: the account, if any, and the failures counted against the login's throttle key. */
export type LoginLookupRow = { [K in keyof Credentials]: Credentials[K] | null } & { failures: number | null, lastFailureAt: Date | null }

// Always exactly one row, with or without failures, with or without an account: the same
// statement and the same work whether the account exists. It reads "LoginFailure" (the
// throttle's state) and the second factors beside the user: one round trip before the hash.
const lookupOf = (column: 'email' | 'username') => statement<LoginLookupRow>(`login.lookup_by_${column}`, `
  SELECT f.failures, f."lastFailureAt",
    u.id, u.email, u.username, u.role, u."emailVerifiedAt", u."passwordHash", u."isActive", u."signOutGeneration",
    (t."confirmedAt" IS NOT NULL OR EXISTS (SELECT 1 FROM "Passkey" p WHERE p."userId" = u.id)) AS "mfaEnabled"
  FROM (VALUES (1)) AS one
  LEFT JOIN "LoginFailure" f ON f.key = $1
  LEFT JOIN "User" u ON u.${column} = $2
  LEFT JOIN "TotpFactor" t ON t."userId" = u.id`)
const lookups = { email: lookupOf('email'), username: lookupOf('username') }

export async function loginLookup (sql: Sql, column: 'email' | 'username', value: string, throttleKey: string): Promise<LoginLookupRow> {
  const { rows: [row] } = await lookups[column](sql, [throttleKey, value])
  if (row === undefined) throw new Error('login lookup returned no row')
  return row
}

/**
 * An account is abandoned when its address was never proven, it was made before `since`, and
 * its holder has done nothing with it since: no session used after `since` or still open, no
 * verification or email-change link issued after `since` (a resend, a change, the reminder of a
 * login refused for the unproven address: each needs the password or a session). A reset link
 * is no sign of use: anyone can have one sent. Never an admin, nor an account an admin
 * deactivated (keeping it blocks its address on purpose). The configuration keeps `since` within
 * SESSION_RETENTION_DAYS (an older session or link, deleted, would tell nothing) and past the
 * first link's lifetime.
 */
const abandoned = (since: Date, at: Date) => Prisma.sql`
  u."emailVerifiedAt" IS NULL AND u.role = 'user' AND u."isActive" AND u."createdAt" < ${iso(since)}::timestamp(3)
  AND NOT EXISTS (SELECT 1 FROM "Session" s WHERE s."userId" = u.id
    AND (s."lastUsedAt" >= ${iso(since)}::timestamp(3) OR (s."revokedAt" IS NULL AND LEAST(s."idleExpiresAt", s."absoluteExpiresAt") > ${iso(at)}::timestamp(3))))
  AND NOT EXISTS (SELECT 1 FROM "OneTimeToken" t WHERE t."userId" = u.id AND t.purpose IN ('email_verify', 'email_change') AND t."createdAt" >= ${iso(since)}::timestamp(3))`

/** Locks up to `batch` abandoned accounts, oldest first; rows another transaction holds are skipped, never waited for. Their ids. */
export async function lockAbandonedAccounts (tx: Transaction, since: Date, at: Date, batch: number): Promise<string[]> {
  const rows = await tx.$queryRaw<Array<{ id: string }>>`
    SELECT u.id FROM "User" u WHERE ${abandoned(since, at)} ORDER BY u."createdAt" LIMIT ${batch} FOR UPDATE OF u SKIP LOCKED`
  return rows.map(row => row.id)
}

/**
 * Deletes the accounts of `ids` still abandoned: asked again in a statement of its own, which
 * sees what committed while the rows were being locked (a sign-in or a link of that moment
 * keeps its account). What it deleted.
 */
export async function deleteAbandonedAccounts (tx: Transaction, ids: string[], since: Date, at: Date) {
  return await tx.$queryRaw<Array<{ id: string, email: string, username: string | null }>>`
    DELETE FROM "User" u WHERE u.id = ANY(${ids}::uuid[]) AND ${abandoned(since, at)} RETURNING u.id, u.email, u.username`
}
