// Every query of the Session table: the Prisma queries, and the hot paths' statements on the pool (a login opening a session, a refresh rotating one).
import { iso, statement, type Sql } from '../../db/sql.js'
import type { Db, Transaction } from '../../db/prisma.js'
import type { Prisma } from '../../generated/prisma/client.js'
import type { Position } from '../pagination.js'
import { API_USER_COLUMNS, API_USER_FROM, type ApiUserRow } from '../accounts/api-user.js'
import { countSignOut, lockUser } from '../accounts/user-store.js'
import { liveSessionSql, liveSessionWhere } from './liveness.js'

/** Why a session ended, kept on the row for the owner and for audits. */
export type RevokeReason =
  | 'logout' | 'logout_all' | 'revoked_by_user' | 'revoked_by_admin' | 'deactivated'
  | 'refresh_reuse' | 'evicted' | 'password_change' | 'password_reset' | 'mfa_removed_by_admin'

/** The ways a session proves its user again; each has the column of its last proof. */
export type ProofMethod = 'password' | 'totp' | 'recovery_code' | 'webauthn'

/** Holds the session's row until the transaction ends: its end (a logout, a reuse's remedy) waits, or is seen. */
export async function shareSession (tx: Transaction, id: string): Promise<void> {
  await tx.$queryRaw`SELECT 1 FROM "Session" WHERE id = ${id}::uuid FOR SHARE`
}

/** A device hash no device has: what a remedy leaves on the sessions whose devices it forgets. */
const FORGOTTEN_DEVICE = new Uint8Array(0)

/** The reasons that say a session was not its owner's: see disownSession. */
export type DisownReason = Extract<RevokeReason, 'revoked_by_user' | 'revoked_by_admin' | 'refresh_reuse'>

/**
 * The reasons of a session picked out of a list, by its owner or an admin: it must still be
 * live, since an expired session is in no list, and ending it would audit and count a remedy
 * of nothing (regression: 204, where an ended one is 404). A logout or a reuse's remedy ends
 * any session not ended yet.
 */
const PICKED_FROM_A_LIST: ReadonlySet<RevokeReason> = new Set(['revoked_by_user', 'revoked_by_admin'])

/** Ends the session (only if it is `userId`'s, when given) at `at`, for `reason`; false when it had ended already, is not there, or (see PICKED_FROM_A_LIST) expired. */
export async function endSession (db: Db, where: { id: string, userId?: string }, reason: RevokeReason, at: Date): Promise<boolean> {
  const endable = PICKED_FROM_A_LIST.has(reason) ? liveSessionWhere(at) : { revokedAt: null }
  const { count } = await db.session.updateMany({ where: { ...where, ...endable }, data: { revokedAt: at, revokedReason: reason } })
  return count === 1
}

/**
 * Ends the user's session `where.id` as not theirs (from the session list, by an admin, for a
 * reused refresh token), inside the caller's transaction; false when it had ended already or
 * is not the user's. As every remedy does, it takes the user's row first (two of these for
 * sessions of one device, each holding its own and wanting the other's, deadlocked) and counts
 * a sign-out there (User.signOutGeneration): a login under way, which read the account before,
 * opens no session after it (regression: one racing the revoke read the session as live, took
 * its device as known, and its own new session vouched for the device on). The device loses
 * its standing on every session of the account: a sign-in from it is told.
 */
export async function disownSession (tx: Transaction, { id, userId }: { id: string, userId: string }, reason: DisownReason, at: Date): Promise<boolean> {
  await lockUser(tx, userId)
  if (!await endSession(tx, { id, userId }, reason, at)) return false
  await countSignOut(tx, userId)
  await forgetDeviceOf(tx, id)
  return true
}

/**
 * Forgets the device of the session `id` on every session of its user (regression: only the
 * ended one forgot it, and a session of the same device signed out before still vouched for
 * it), and the session's own standing if it recorded no device.
 */
async function forgetDeviceOf (tx: Transaction, id: string): Promise<void> {
  await tx.$executeRaw`
    UPDATE "Session" s SET "deviceHash" = ${FORGOTTEN_DEVICE}
    FROM "Session" ended
    WHERE ended.id = ${id}::uuid AND s."userId" = ended."userId" AND (s.id = ended.id OR s."deviceHash" = ended."deviceHash")`
}

/**
 * Ends every live session of the user but `exceptId`, inside the remedy's transaction: how
 * many ended. It takes the user's row first, as a login does (a login ending the sessions
 * beyond the cap and this, each locking the sessions in its own plan's order, deadlocked now
 * and then), and counts the sign-out there (User.signOutGeneration): a login under way opens
 * no session after it. The sessions are ended by a statement of their own, after the lock: one
 * statement would end them as its snapshot, taken before it waited, saw them, and miss the
 * session of a login that committed meanwhile (regression: it lived on after the remedy).
 */
export async function endSessionsOfUser (tx: Transaction, userId: string, reason: RevokeReason, at: Date, exceptId: string | null = null): Promise<number> {
  await countSignOut(tx, userId)
  const ended = await tx.$executeRaw`
    UPDATE "Session" SET "revokedAt" = ${iso(at)}::timestamp(3), "revokedReason" = ${reason}
    WHERE "userId" = ${userId}::uuid AND "revokedAt" IS NULL AND id IS DISTINCT FROM ${exceptId}::uuid`
  await forgetDevices(tx, userId, exceptId)
  return ended
}

/**
 * Every remedy forgets the devices the account's sessions vouched for, ended ones too, but the
 * caller's own: an intruder's device, once told of, must not pass as known after the owner
 * changed the password or signed everyone out.
 */
async function forgetDevices (tx: Transaction, userId: string, exceptId: string | null): Promise<void> {
  await tx.$executeRaw`
    UPDATE "Session" SET "deviceHash" = ${FORGOTTEN_DEVICE}
    WHERE "userId" = ${userId}::uuid AND id IS DISTINCT FROM ${exceptId}::uuid AND ("deviceHash" IS NULL OR "deviceHash" <> ${FORGOTTEN_DEVICE})`
}

export async function countLiveSessions (db: Db, at: Date): Promise<number> {
  return await db.session.count({ where: liveSessionWhere(at) })
}

/** The session `sessionId` of `userId` with `select`'s columns, only while it is live at `at`. */
export async function liveSessionOf<S extends Prisma.SessionSelect> (db: Db, userId: string, sessionId: string, at: Date, select: S) {
  return await db.session.findFirst({ where: { id: sessionId, userId, ...liveSessionWhere(at) }, select })
}

/** Whose session it is and its secret salt, live or not: what checking a refresh token needs. */
export async function saltOf (db: Db, sessionId: string) {
  return await db.session.findUnique({ where: { id: sessionId }, select: { userId: true, secretSalt: true } })
}

/**
 * The user's live sessions, most recently used first: `limit` + 1 rows after `position` (the
 * extra one tells a next page exists). The position is a (lastUsedAt, id) pair, not Prisma's
 * cursor on a row: that row may have ended since (its owner ended the last session shown),
 * and a cursor on a row the filter no longer matches skipped the next live one.
 */
export async function liveSessionsPage (db: Db, userId: string, at: Date, limit: number, position: Position | null) {
  const after = position === null ? {} : { OR: [{ lastUsedAt: { lt: position.at } }, { lastUsedAt: position.at, id: { gt: position.id } }] }
  return await db.session.findMany({
    where: { AND: [{ userId, ...liveSessionWhere(at) }, after] },
    orderBy: [{ lastUsedAt: 'desc' }, { id: 'asc' }],
    take: limit + 1,
    select: { id: true, userAgent: true, ip: true, createdAt: true, lastUsedAt: true, idleExpiresAt: true, absoluteExpiresAt: true }
  })
}

/**
 * Records that the session's user proved `method` at `at` (what fresh authentication reads),
 * only while the session is live: false when it has ended, so that a caller holding a revoked
 * session's access token cannot finish what it began (the caller rolls back its transaction).
 */
export async function markProven (db: Db, userId: string, sessionId: string, proof: Proof, at: Date): Promise<boolean> {
  const { count } = await db.session.updateMany({ where: { id: sessionId, userId, ...liveSessionWhere(at) }, data: provenData(proof, at) })
  return count > 0
}

/** A proof, as the session records it: the time, and which factor (see assertAdminSession). */
export type Proof = 'password' | { totpEnrolmentId: string } | { passkeyId: string } | { recoveryCodeGeneration: number }

function provenData (proof: Proof, at: Date) {
  if (proof === 'password') return { passwordProvenAt: at }
  if ('totpEnrolmentId' in proof) return { totpProvenAt: at, totpProvenEnrolmentId: proof.totpEnrolmentId }
  if ('passkeyId' in proof) return { passkeyProvenAt: at, passkeyProvenId: proof.passkeyId }
  return { recoveryCodeProvenAt: at, recoveryCodeGeneration: proof.recoveryCodeGeneration }
}

/**
 * Records a reauthentication: the proof, as markProven does, the session's authentication time
 * (the access tokens' auth_time) and the `jti` of the access token it answers, the only one that
 * counts as fresh from now on. What that token needs; null when the session has ended.
 */
export async function markReauthenticated (tx: Transaction, userId: string, sessionId: string, proof: Proof, at: Date, freshTokenId: string) {
  const { count } = await tx.session.updateMany({ where: { id: sessionId, userId, ...liveSessionWhere(at) }, data: { ...provenData(proof, at), authTime: at, freshTokenId } })
  if (count === 0) return null
  return await tx.session.findUniqueOrThrow({
    where: { id: sessionId },
    select: { amr: true, authTime: true, idleExpiresAt: true, absoluteExpiresAt: true, user: { select: { role: true, emailVerifiedAt: true } } }
  })
}

// The hot paths' statements, on the pool: sent through Prisma's $queryRaw instead, a refresh
// served about half as many requests and a login a tenth fewer (docs/benchmarks.md, "The hot
// paths' statements").

/** A session as a refresh reads it, with its user's state. */
export interface RefreshRow {
  id: string
  userId: string
  secretSalt: Uint8Array
  generation: number
  rotatedAt: Date | null
  revokedAt: Date | null
  idleExpiresAt: Date
  absoluteExpiresAt: Date
  authTime: Date
  amr: string[] | null
  role: string
  isActive: boolean
  emailVerifiedAt: Date | null
}

// The first refresh of a session in a process reads it (for its salt), then rotates it.
const selectForRefresh = statement<RefreshRow>('refresh.session', `
  SELECT s.id, s."userId", s."secretSalt", s.generation, s."rotatedAt", s."revokedAt", s."idleExpiresAt", s."absoluteExpiresAt", s."authTime", s.amr,
    u.role, u."isActive", u."emailVerifiedAt"
  FROM "Session" s JOIN "User" u ON u.id = s."userId"
  WHERE s.id = $1`)

export async function sessionForRefresh (sql: Sql, sessionId: string): Promise<RefreshRow | null> {
  return (await selectForRefresh(sql, [sessionId])).rows[0] ?? null
}

/** What a rotation returns: the new state, without the salt (the caller has it). */
export type RotatedRow = Omit<RefreshRow, 'secretSalt' | 'rotatedAt' | 'revokedAt' | 'isActive'>

/**
 * One conditional update: of concurrent callers holding generation G of a live session, exactly
 * one moves it to G + 1 and gets what the new tokens need. No row when anything else holds
 * (another generation, revoked, expired, a deactivated or unverified user), which the caller
 * then sorts out. The salt is not read: the caller has checked the token against it.
 * Rotation moves the idle expiry, never past the absolute one.
 */
export function sessionRotation (requireVerifiedEmail: boolean) {
  const rotate = statement<RotatedRow>(`refresh.rotate${requireVerifiedEmail ? '.verified' : ''}`, `
  UPDATE "Session" s SET generation = s.generation + 1, "rotatedAt" = $3, "lastUsedAt" = $3, "idleExpiresAt" = LEAST($4::timestamp, s."absoluteExpiresAt"), ip = $5
  FROM "User" u
  WHERE s.id = $1 AND s.generation = $2 AND u.id = s."userId" AND ${liveSessionSql('s', '$3')}${requireVerifiedEmail ? ' AND u."emailVerifiedAt" IS NOT NULL' : ''}
  RETURNING s.id, s."userId", s.generation, s."idleExpiresAt", s."absoluteExpiresAt", s."authTime", s.amr, u.role, u."emailVerifiedAt"`)
  return async (sql: Sql, sessionId: string, generation: number, at: Date, idleExpiresAt: Date, ip: string): Promise<RotatedRow | null> =>
    (await rotate(sql, [sessionId, generation, iso(at), iso(idleExpiresAt), ip])).rows[0] ?? null
}

/** A session a proven login opens, with the proofs it carries and its audit entry. */
export interface NewSession {
  id: string
  userId: string
  salt: Uint8Array
  userAgent: string | null
  ip: string
  at: Date
  idleExpiresAt: Date
  absoluteExpiresAt: Date
  amr: string[]
  /** The `jti` of the access token the login answers: the session's fresh one (see assertFresh). */
  freshTokenId: string
  /** The proofs the login made: each sets its column to the login's time (an app's with its enrolment, a recovery code's with its generation, a passkey's with its id). */
  proven: { password: boolean, totpEnrolmentId: string | null, recoveryCodeGeneration: number | null, passkeyId: string | null }
  /** Live sessions of the user that survive: the oldest beyond them end ('evicted'). */
  keepOthers: number
  /** The user's sessions that ended before this are deleted. */
  deleteEndedBefore: Date
  /**
   * The account as the login read it (see LoginProof): the session opens only while the user
   * still has that password hash and no remedy has ended their sessions since.
   */
  passwordHash: string | null
  signOutGeneration: number | null
  /** The login's throttle keys, whose failures are forgotten. */
  throttleKeys: string[]
  auditId: string
  /** The device's hash (see devices.ts), and the words a notice describes it by. */
  deviceHash: Buffer
  deviceDescription: string
  /** Whether the owner is mailed a notice (`noticeId` the mail's id) of a sign-in from a device the account does not know, or after `afterFailures` failed attempts; one per NOTICE_INTERVAL_MS at most. */
  notices: { enabled: boolean, afterFailures: number }
  noticeId: string
}

/** What an opened session's statement answers: the user as the API shows it, and whether the owner was mailed a notice. */
export type OpenedSessionRow = ApiUserRow & { noticed: boolean }

/**
 * At most one notice of a sign-in per account in this time (User.signInNoticeAt): whoever has
 * the password and signs in again and again from new devices must not fill the owner's
 * mailbox, and one due within it waits for its end. The owner's activity shows every sign-in,
 * each new device marked.
 */
const NOTICE_INTERVAL_MS = 15 * 60 * 1000
/**
 * Mails that may wait, one a quarter after the other, each about its own sign-in: a sign-in due
 * one beyond them is not mailed, and its session vouches for nothing.
 */
const NOTICES_WAITING = 4

// One statement, so one round trip and all or nothing: while the user is still active, still
// has the password the login proved and has not been signed out everywhere since the login
// read the account, the identifiers' failures are
// forgotten (NIST SP 800-63B 3.2.2), the session opens, the oldest live sessions beyond the
// cap end (the new one is not in this statement's snapshot, hence keepOthers = cap - 1),
// the user's sessions revoked before the retention cutoff, or never revoked and expired
// before it, are deleted (an ended session only takes room: the audit log keeps its story),
// the audit entry is written, and the user comes back for the answer. It writes
// "LoginFailure", "AuditEvent", "OutboxMail" and "User" too: splitting it would cost the login
// three round trips. A device is known when a session of the account opened on it (its hash)
// is live or ended within the retention time, or while any session that recorded no device
// (opened before devices were) lives; a remedy forgets the devices (endSessionsOfUser,
// disownSession). An account's first sign-in (no session yet, made within the retention time)
// is from no new device. The owner is mailed when the device is new or the failures forgotten
// were many (ASVS 6.3.5), at a proven address only (an unproven one may be a stranger's, whom
// a registrant signing in again and again would mail). At most one mail per NOTICE_INTERVAL_MS:
// one due within it of the last waits in the outbox for its end, and up to NOTICES_WAITING wait
// in turn, each about its own sign-in. The time of the last (or last waiting) mail is on the
// user's row, read as `locked` holds it, the address too (either may have changed while the
// login waited), so that sign-ins at once, whatever their instances' clocks, are each mailed in
// turn (regressions: each read the audit trail as it was before the other committed, and each
// mailed; a sign-in sharing a waiting mail was named in none; one whose clock read earlier than
// another instance's mail was taken for sharing it, and mailed nobody). A session vouches for
// its device (`deviceVouches`) only if the account knew it, or was told of this sign-in, or
// cannot be (its first, an unproven address, the mails off): the device of one that stood for
// any, or came past the mails that may wait, is told of at its next sign-in (regression: an
// intruder's sign-in within the quarter after the owner acted went untold, and its session
// vouched for the device on). The hash is kept either way, so that an end of a session as not
// the owner's forgets the device on all its sessions (regression: one that vouched for nothing
// had no hash to match, and the device's other sessions vouched on). The mail, its time and its
// marks on the audit entry commit with the session.
// The deletion is two DELETEs, each a range of the (userId, revokedAt) index, so a user with
// many recently ended sessions costs nothing whatever plan PostgreSQL keeps for the statement
// (one deletion with an OR could become "all the user's sessions, filtered"). The evicted
// sessions, live ones, are never deleted. Everything waits for `locked` first (a one-time
// filter), so logins of one user queue on the user's row: two at once, each locking the
// sessions it ends in its own plan's order, deadlocked now and then. NO KEY UPDATE leaves the
// foreign keys' KEY SHARE locks free. Its condition is checked again on the row as it is once
// the lock is held: a password changed or reset, a deactivation, a logout-all or an admin's
// remedy, committed while the password was being hashed or the passkey checked, wins, and the
// login opens nothing (no row comes back).
const openSessionStatement = statement<OpenedSessionRow>('login.succeed', `
  WITH locked AS MATERIALIZED (
    SELECT id, email, "emailVerifiedAt", "signInNoticeAt" FROM "User" WHERE id = $2 AND "isActive" AND ($19::text IS NULL OR "passwordHash" = $19)
      AND ($21::int IS NULL OR "signOutGeneration" = $21) FOR NO KEY UPDATE
  ), cleared AS (
    DELETE FROM "LoginFailure" WHERE key = ANY($1::text[]) AND EXISTS (SELECT FROM locked)
    RETURNING failures, "expiresAt"
  ), known AS MATERIALIZED (
    SELECT locked.email, $25 AND locked."emailVerifiedAt" IS NOT NULL AS told,
      EXISTS (
        SELECT FROM "Session" s WHERE s."userId" = $2 AND s."deviceHash" = $24 AND s."deviceVouches"
          AND COALESCE(s."revokedAt", LEAST(s."idleExpiresAt", s."absoluteExpiresAt")) >= $18
      ) AS by_hash,
      EXISTS (SELECT FROM "Session" s WHERE s."userId" = $2 AND s."deviceHash" IS NULL AND ${liveSessionSql('s', '$4')}) AS by_any,
      EXISTS (SELECT FROM "Session" s WHERE s."userId" = $2) OR u."createdAt" < $18 AS established,
      CASE WHEN locked."signInNoticeAt" IS NULL OR locked."signInNoticeAt" <= $4::timestamp(3) - make_interval(secs => $29) THEN $4
        WHEN locked."signInNoticeAt" <= $4::timestamp(3) + make_interval(secs => $29 * ${NOTICES_WAITING - 1}) THEN locked."signInNoticeAt" + make_interval(secs => $29) END AS notice_at,
      (SELECT COALESCE(sum(failures), 0) FROM cleared WHERE "expiresAt" > $4)::int AS failed_attempts
    FROM "User" u JOIN locked ON locked.id = u.id
  ), seen AS MATERIALIZED (
    SELECT *, NOT by_hash AND NOT by_any AND established AS new_device FROM known
  ), noticed AS (
    INSERT INTO "OutboxMail" (id, kind, recipient, data, "nextAttemptAt", "createdAt")
    SELECT $27, 'new_sign_in', seen.email,
      $28::jsonb || jsonb_build_object('newDevice', seen.new_device, 'failedAttempts', seen.failed_attempts), seen.notice_at, $4
    FROM seen
    WHERE seen.told AND (seen.new_device OR seen.failed_attempts >= $26) AND seen.notice_at IS NOT NULL
    RETURNING "nextAttemptAt"
  ), marked AS (
    UPDATE "User" u SET "signInNoticeAt" = noticed."nextAttemptAt" FROM noticed WHERE u.id = $2
  ), evicted AS (
    UPDATE "Session" SET "revokedAt" = $4, "revokedReason" = 'evicted'
    WHERE id IN (
      SELECT s.id FROM "Session" s
      WHERE s."userId" = $2 AND ${liveSessionSql('s', '$4')} AND EXISTS (SELECT FROM locked)
      ORDER BY s."lastUsedAt" DESC, s."createdAt" DESC
      OFFSET $10)
  ), deleted_revoked AS (
    DELETE FROM "Session" s
    WHERE s."userId" = $2 AND s."revokedAt" < $18 AND EXISTS (SELECT FROM locked)
  ), deleted_expired AS (
    DELETE FROM "Session" s
    WHERE s."userId" = $2 AND s."revokedAt" IS NULL AND LEAST(s."idleExpiresAt", s."absoluteExpiresAt") < $18 AND EXISTS (SELECT FROM locked)
  ), created AS (
    INSERT INTO "Session" (id, "userId", "secretSalt", "userAgent", ip, "createdAt", "lastUsedAt", "idleExpiresAt", "absoluteExpiresAt",
      "authTime", amr, "passwordProvenAt", "totpProvenAt", "recoveryCodeProvenAt", "passkeyProvenAt", "passkeyProvenId", "recoveryCodeGeneration", "totpProvenEnrolmentId", "deviceHash",
      "freshTokenId", "deviceVouches")
    SELECT $3, $2, $5, $6, $7, $4, $4, $8, $9, $4, $13::text[], $16, $14, $15, $17, $20, $22, $23, $24, $30,
      seen.by_hash OR NOT seen.established OR NOT seen.told OR EXISTS (SELECT FROM noticed)
    FROM seen
  ), audited AS (
    INSERT INTO "AuditEvent" (id, "createdAt", action, "actorId", "subjectId", ip, details)
    SELECT $11, $4, 'login.succeeded', $2, $2, $7, $12::jsonb || jsonb_strip_nulls(jsonb_build_object(
      'newDevice', CASE WHEN seen.new_device THEN true END,
      'failedAttempts', NULLIF(seen.failed_attempts, 0),
      'noticed', CASE WHEN EXISTS (SELECT FROM noticed) THEN true END))
    FROM seen
  )
  SELECT ${API_USER_COLUMNS}, EXISTS (SELECT FROM noticed) AS noticed FROM ${API_USER_FROM} WHERE u.id = $2 AND EXISTS (SELECT FROM locked)`)

/** Opens the session; the user as the API shows it, or null when the account is gone, inactive, or has another password now. */
export async function openSession (sql: Sql, session: NewSession): Promise<OpenedSessionRow | null> {
  const at = iso(session.at)
  const { rows: [row] } = await openSessionStatement(sql, [
    session.throttleKeys, session.userId, session.id, at, Buffer.from(session.salt), session.userAgent, session.ip,
    iso(session.idleExpiresAt), iso(session.absoluteExpiresAt), session.keepOthers, session.auditId, JSON.stringify({ sessionId: session.id, amr: session.amr }),
    session.amr, session.proven.totpEnrolmentId === null ? null : at, session.proven.recoveryCodeGeneration === null ? null : at, session.proven.password ? at : null, session.proven.passkeyId === null ? null : at,
    iso(session.deleteEndedBefore), session.passwordHash, session.proven.passkeyId, session.signOutGeneration, session.proven.recoveryCodeGeneration,
    session.proven.totpEnrolmentId, session.deviceHash, session.notices.enabled, session.notices.afterFailures, session.noticeId,
    JSON.stringify({ at, ip: session.ip, device: session.deviceDescription }),
    NOTICE_INTERVAL_MS / 1000, session.freshTokenId
  ])
  return row ?? null
}

/**
 * Deletes up to `batch` sessions that ended before `cutoff` (revoked, or past their idle or
 * absolute limit), skipping rows in use: the retention pass's (a login deletes its own user's).
 * It reads the table whole, once an hour: an index that found the ended sessions would hold
 * "idleExpiresAt", which every refresh rewrites, and cost each refresh its heap-only update.
 */
export async function deleteSessionsEndedBefore (db: Db, cutoff: Date, batch: number): Promise<number> {
  return await db.$executeRaw`DELETE FROM "Session" WHERE id IN (SELECT id FROM "Session"
    WHERE "revokedAt" < ${iso(cutoff)}::timestamp(3) OR ("revokedAt" IS NULL AND LEAST("idleExpiresAt", "absoluteExpiresAt") < ${iso(cutoff)}::timestamp(3))
    LIMIT ${batch} FOR UPDATE SKIP LOCKED)`
}
