// Administration of users: listing, reading, changing role and state, deleting, ending sessions.
import type { Static } from '@sinclair/typebox'
import type { UserChanges as UserChangesBody } from '../../schemas/admin.js'
import { lockFor } from '../../db/locks.js'
import { isUniqueViolation } from '../../db/refusals.js'
import type { PrismaClient, Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import type { AdminActor } from './admin-actor.js'
import type { AuditService } from './audit.js'
import { after, decodeCursor, encodeCursor, type Page } from '../pagination.js'
import type { PasswordResetService } from '../passwords/password-reset.js'
import { needsProvenAddress, type Role } from '../accounts/roles.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import type { SessionService, SessionView } from '../sessions/sessions.js'
import { toAdminUser, type AdminUser } from '../accounts/api-user.js'
import { activeAdminCount, adminListPage, adminViewOf, deleteUser, lockUser, updateByAdmin, userById } from '../accounts/user-store.js'
import { canonical } from '../accounts/canonical.js'
import { voidUnfinishedChanges } from '../accounts/unfinished-changes.js'
import { moveFailuresToNewName } from '../accounts/users.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import type { MailOutbox } from '../mail/outbox.js'

export interface UserQuery {
  limit: number
  cursor?: string | undefined
  /** The email or the username: a prefix of it, or all of it when `match` is `exact`. */
  q?: string | undefined
  match?: 'prefix' | 'exact' | undefined
  role?: Role | undefined
  active?: boolean | undefined
}

/** A change of a user by an admin, as PATCH /admin/users/:id takes it. */
export type UserChanges = Static<typeof UserChangesBody>

export interface AdminDeps {
  prisma: PrismaClient
  sessions: SessionService
  audit: AuditService
  passwordReset: Pick<PasswordResetService, 'requestResetIn'>
  oneTimeTokens: Pick<OneTimeTokenService, 'revoke'>
  throttle: Pick<LoginThrottle, 'clear' | 'keys' | 'move'>
  outbox: Pick<MailOutbox, 'queue' | 'wake'>
  now: () => Date
}

/**
 * Refuses a change that would leave no active admin. Run under the "admins" lock, so two
 * admins demoting each other at the same moment cannot both succeed. The lock comes before
 * the user's row (a change that may need it takes it first; taking it again is a no-op), so
 * a change and a deletion never wait for each other in the opposite order.
 */
async function assertAnotherActiveAdmin (tx: Transaction, userId: string): Promise<void> {
  await lockFor(tx, 'admins')
  if (await activeAdminCount(tx, userId) === 0) throw apiError('LAST_ADMIN')
}

/** The admin view of a user, or 404. */
function finderOf (prisma: PrismaClient) {
  return async function findOrThrow (id: string) {
    const row = await adminViewOf(prisma, id)
    if (row === null) throw apiError('NOT_FOUND')
    return row
  }
}

type FindOrThrow = ReturnType<typeof finderOf>

/**
 * Before a user's deletion: refuses it when they are the last active admin, judged by their
 * role and state as they are under the "admins" lock and their row's, not as read before (a
 * promotion committed while a deletion checked the password makes them an admin).
 */
export async function assertDeletionLeavesAnAdmin (tx: Transaction, userId: string): Promise<void> {
  await lockFor(tx, 'admins')
  await lockUser(tx, userId)
  const user = await userById(tx, userId, { role: true, isActive: true })
  if (user?.role === 'admin' && user.isActive) await assertAnotherActiveAdmin(tx, userId)
}

/**
 * The deletion's notice, in its transaction: only to an address the account had proven (a
 * registration with someone else's address, deleted, mails its holder nothing more). Notices
 * queued before it are still sent: the last thing an intruder does may be to delete.
 */
export async function queueDeletionNotice (tx: Transaction, outbox: Pick<MailOutbox, 'queue'>, deleted: { email: string, emailVerifiedAt: Date | null }, byAdmin: boolean): Promise<void> {
  if (deleted.emailVerifiedAt !== null) await outbox.queue(tx, { kind: 'account_deleted', to: deleted.email, byAdmin })
}

/** Listing, reading and changing users. */
function userAdministration ({ prisma, sessions, audit, oneTimeTokens, throttle, now }: AdminDeps, findOrThrow: FindOrThrow) {
  /** An entry for each kind of change made to the user as they were `before`. */
  async function auditChange (tx: Transaction, entry: { actorId: string, subjectId: string, ip: string }, before: { role: Role, isActive: boolean, username: string | null }, changes: UserChanges) {
    if (changes.role !== undefined && changes.role !== before.role) await audit.recordIn(tx, { ...entry, action: 'user.role_changed', details: { from: before.role, to: changes.role } })
    if (changes.isActive !== undefined && changes.isActive !== before.isActive) await audit.recordIn(tx, { ...entry, action: changes.isActive ? 'user.activated' : 'user.deactivated' })
    const renamed = changes.username !== undefined && changes.username !== before.username
    const fields = [...(renamed ? ['username'] : []), ...Object.keys(changes.profile ?? {})]
    // The name given up is kept: who was "support-team" stays answerable after a rename.
    if (fields.length > 0) await audit.recordIn(tx, { ...entry, action: 'user.updated', details: { fields, ...(renamed ? { usernameWas: before.username } : {}) } })
  }

  return {
    async list ({ limit, cursor, q, match = 'prefix', role, active }: UserQuery): Promise<Page<AdminUser>> {
      const text = q === undefined ? undefined : { value: canonical(q), exact: match === 'exact' }
      const rows = await adminListPage(prisma, { text, role, active, after: after(decodeCursor(cursor)) }, limit + 1)
      const last = rows.length > limit ? rows[limit - 1] : undefined
      return { items: rows.slice(0, limit).map(toAdminUser), nextCursor: last === undefined ? null : encodeCursor({ at: last.createdAt, id: last.id }) }
    },

    async get (id: string): Promise<AdminUser> {
      return toAdminUser(await findOrThrow(id))
    },

    /**
     * Changes role, active state or profile. Deactivating ends every session at once; the
     * last active admin can be neither demoted nor deactivated; an account whose address was
     * never proven is not given an administrative role (its registrant may not own the address). One transaction: the change,
     * the end of the sessions and the audit entries commit together or not at all, so a
     * failure leaves nothing half done for the admin's retry to skip.
     */
    async update (actor: AdminActor, id: string, asked: UserChanges): Promise<AdminUser> {
      const changes = asked.username === undefined ? asked : { ...asked, username: canonical(asked.username) }
      const row = await prisma.$transaction(async tx => {
        // A change that may take an admin away runs alone (see admin-actor.ts and assertAnotherActiveAdmin).
        await actor.confirm(tx, { target: id, exclusive: changes.isActive === false || (changes.role !== undefined && changes.role !== 'admin') })
        // `before` is read under the row's lock: the role and state this change replaces.
        const before = await adminViewOf(tx, id)
        if (before === null) throw apiError('NOT_FOUND')
        if (changes.role !== undefined && needsProvenAddress(before.role, changes.role, before.emailVerifiedAt)) throw apiError('USER_UNVERIFIED')
        const demotes = before.role === 'admin' && changes.role !== undefined && changes.role !== 'admin'
        const deactivates = before.isActive && changes.isActive === false
        if (demotes || deactivates) await assertAnotherActiveAdmin(tx, id)
        if (deactivates) {
          await sessions.revokeAll(id, 'deactivated', tx)
          await voidUnfinishedChanges(tx, oneTimeTokens, id, now())
        }
        if (changes.username !== undefined) await moveFailuresToNewName(tx, throttle, before.username, changes.username)
        const row = await updateByAdmin(tx, id, changes, now())
        await auditChange(tx, { actorId: actor.userId, subjectId: id, ip: actor.ip }, before, changes)
        return row
      }).catch((error: unknown) => {
        throw isUniqueViolation(error) ? apiError('USERNAME_TAKEN') : error
      })
      return toAdminUser(row)
    }
  }
}

/** Deleting a user, ending their sessions, mailing them a reset link. */
function accountAdministration ({ prisma, sessions, audit, passwordReset, oneTimeTokens, throttle, outbox, now }: AdminDeps, findOrThrow: FindOrThrow) {
  return {
    /** Deletes the user with profile, sessions and tokens; never the last active admin. Audited in the same transaction, as every admin change of a user is. */
    async remove (actor: AdminActor, id: string): Promise<void> {
      await prisma.$transaction(async tx => {
        await actor.confirm(tx, { target: id, exclusive: true })
        await assertDeletionLeavesAnAdmin(tx, id)
        // The address and name as deleted (regression: as read before the transaction, so an
        // address change confirmed meanwhile left the new one's failure counts and audited the old).
        const deleted = await deleteUser(tx, id)
        if (deleted === null) throw apiError('NOT_FOUND')
        // Whoever registers the address or the name next starts with no failures of this account's.
        await throttle.clear(throttle.keys.everyKeyOf({ id, ...deleted }), tx)
        await queueDeletionNotice(tx, outbox, deleted, true)
        await audit.recordIn(tx, { action: 'user.deleted', actorId: actor.userId, subjectId: id, ip: actor.ip, details: { email: deleted.email } })
      })
      outbox.wake()
    },

    async revokeSessions (actor: AdminActor, id: string): Promise<void> {
      await sessions.signOutEverywhere(actor, id, 'revoked_by_admin')
    },

    /** The user's live sessions, most recently used first; `current` marks the caller's own when they look at themselves. */
    async sessionsOf (id: string, callerSessionId: string, page: { limit: number, cursor?: string | undefined }): Promise<Page<SessionView>> {
      await findOrThrow(id)
      return sessions.list(id, callerSessionId, page)
    },

    /** Ends one session of the user; 404 when it is not theirs or already ended (as for the owner). */
    async revokeSession (actor: AdminActor, id: string, sessionId: string): Promise<void> {
      await prisma.$transaction(async tx => {
        await actor.confirm(tx, { target: id })
        if (!await sessions.revokeByAdmin(id, sessionId, tx)) throw apiError('NOT_FOUND')
        await audit.recordIn(tx, { action: 'session.revoked', actorId: actor.userId, subjectId: id, ip: actor.ip, details: { sessionId } })
      })
    },

    /**
     * Mails the user a reset link through the durable outbox, as `forgot` does. A deactivated
     * account is refused (409 USER_INACTIVE) rather than silently skipped: the admin knows the
     * account and must know no link goes out (delivery itself also skips an inactive account).
     */
    async sendPasswordReset (actor: AdminActor, id: string): Promise<void> {
      await prisma.$transaction(async tx => {
        await actor.confirm(tx, { target: id })
        const user = await userById(tx, id, { email: true, isActive: true })
        if (user?.isActive !== true) throw apiError('USER_INACTIVE')
        await passwordReset.requestResetIn(tx, user.email, { action: 'password.reset_sent', actorId: actor.userId, subjectId: id, ip: actor.ip })
      })
      outbox.wake()
    }
  }
}

export function createAdminService (deps: AdminDeps) {
  const findOrThrow = finderOf(deps.prisma)
  return { ...userAdministration(deps, findOrThrow), ...accountAdministration(deps, findOrThrow) }
}

export type AdminService = ReturnType<typeof createAdminService>
