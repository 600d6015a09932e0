// Administration of users: listing, reading, changing role and state, deleting, ending sessions.
import { lockFor } from '../db/locks.js'
import type { PrismaClient, Transaction } from '../db/prisma.js'
import type { Prisma } from '../generated/prisma/client.js'
import { apiError } from '../errors.js'
import type { AuditService } from './audit.js'
import { after, decodeCursor, encodeCursor, type Page } from './pagination.js'
import type { PasswordResetService } from './password-reset.js'
import type { Role } from './roles.js'
import type { SessionService, SessionView } from './sessions.js'
import { canonical, toApiUser, userSelect, type ApiUser } from './users.js'

export interface AdminUser extends ApiUser {
  isActive: boolean
  mfaEnabled: boolean
}

export interface UserQuery {
  limit: number
  cursor?: string | undefined
  /** Prefix of the email or the username. */
  q?: string | undefined
  role?: Role | undefined
  active?: boolean | undefined
}

export interface UserChanges {
  role?: Role | undefined
  isActive?: boolean | undefined
  profile?: { displayName?: string | null, bio?: string | null, avatarUrl?: string | null } | undefined
}

/** Who acts, for the audit trail. */
export interface Actor {
  userId: string
  ip: string
}

const adminSelect = { ...userSelect, isActive: true, totpFactor: { select: { confirmedAt: true } }, _count: { select: { passkeys: true } } } satisfies Prisma.UserSelect

// A passkey is a second factor too (the login asks for one once it exists): it counts here.
function toAdminUser (row: Prisma.UserGetPayload<{ select: typeof adminSelect }>): AdminUser {
  const { isActive, totpFactor, _count, ...rest } = row
  return { ...toApiUser(rest), isActive, mfaEnabled: totpFactor?.confirmedAt != null || _count.passkeys > 0 }
}

export interface AdminDeps {
  prisma: PrismaClient
  sessions: SessionService
  audit: AuditService
  passwordReset: Pick<PasswordResetService, 'requestReset'>
}

export function createAdminService ({ prisma, sessions, audit, passwordReset }: AdminDeps) {
  /**
   * Refuses a change that would leave no active admin. Run under the "admins" lock, so two
   * admins demoting each other at the same moment cannot both succeed.
   */
  async function assertAnotherActiveAdmin (tx: Transaction, userId: string): Promise<void> {
    await lockFor(tx, 'admins')
    const others = await tx.user.count({ where: { role: 'admin', isActive: true, id: { not: userId } } })
    if (others === 0) throw apiError('LAST_ADMIN')
  }

  async function findOrThrow (id: string) {
    const row = await prisma.user.findUnique({ where: { id }, select: adminSelect })
    if (row === null) throw apiError('NOT_FOUND')
    return row
  }

  return {
    async list ({ limit, cursor, q, role, active }: UserQuery): Promise<Page<AdminUser>> {
      // Prisma's startsWith is a LIKE: its wildcards must match themselves (regression: q=% listed everyone).
      const prefix = q === undefined ? undefined : canonical(q).replace(/[\\%_]/g, '\\$&')
      const rows = await prisma.user.findMany({
        where: {
          // AND, not a spread: the search and the cursor are both OR-clauses.
          AND: [
            prefix === undefined ? {} : { OR: [{ email: { startsWith: prefix } }, { username: { startsWith: prefix } }] },
            role === undefined ? {} : { role },
            active === undefined ? {} : { isActive: active },
            after(decodeCursor(cursor))
          ]
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1,
        select: adminSelect
      })
      const last = rows.length > limit ? rows[limit - 1] : undefined
      return { items: rows.slice(0, limit).map(toAdminUser), nextCursor: last === undefined ? null : encodeCursor(last) }
    },

    async get (id: string): Promise<AdminUser> {
      return toAdminUser(await findOrThrow(id))
    },

    /**
     * Changes role, active state or profile. Deactivating ends every session at once; the
     * last active admin can be neither demoted nor deactivated.
     */
    async update (actor: Actor, id: string, changes: UserChanges): Promise<AdminUser> {
      const before = await findOrThrow(id)
      const demotes = before.role === 'admin' && changes.role !== undefined && changes.role !== 'admin'
      const deactivates = before.isActive && changes.isActive === false
      const row = await prisma.$transaction(async tx => {
        if (demotes || deactivates) await assertAnotherActiveAdmin(tx, id)
        return tx.user.update({
          where: { id },
          data: {
            ...(changes.role === undefined ? {} : { role: changes.role }),
            ...(changes.isActive === undefined ? {} : { isActive: changes.isActive }),
            ...(changes.profile === undefined ? {} : { profile: { upsert: { create: changes.profile, update: changes.profile } } })
          },
          select: adminSelect
        })
      })
      if (deactivates) await sessions.revokeAll(id, 'deactivated')
      const entry = { actorId: actor.userId, subjectId: id, ip: actor.ip }
      if (changes.role !== undefined && changes.role !== before.role) await audit.record({ ...entry, action: 'user.role_changed', details: { from: before.role, to: changes.role } })
      if (changes.isActive !== undefined && changes.isActive !== before.isActive) await audit.record({ ...entry, action: changes.isActive ? 'user.activated' : 'user.deactivated' })
      if (changes.profile !== undefined) await audit.record({ ...entry, action: 'user.updated', details: { fields: Object.keys(changes.profile) } })
      return toAdminUser(row)
    },

    /** Deletes the user with profile, sessions and tokens; never the last active admin. */
    async remove (actor: Actor, id: string): Promise<void> {
      const before = await findOrThrow(id)
      await prisma.$transaction(async tx => {
        if (before.role === 'admin' && before.isActive) await assertAnotherActiveAdmin(tx, id)
        await tx.user.delete({ where: { id } })
      })
      await audit.record({ action: 'user.deleted', actorId: actor.userId, subjectId: id, ip: actor.ip, details: { email: before.email } })
    },

    async revokeSessions (actor: Actor, id: string): Promise<void> {
      await findOrThrow(id)
      const count = await sessions.revokeAll(id, 'revoked_by_admin')
      await audit.record({ action: 'sessions.revoked', actorId: actor.userId, subjectId: id, ip: actor.ip, details: { count } })
    },

    /** The user's live sessions, most recently used first; `current` marks the caller's own when they look at themselves. */
    async sessionsOf (id: string, callerSessionId: string, page: { limit: number, cursor?: string | undefined }): Promise<Page<SessionView>> {
      await findOrThrow(id)
      return sessions.list(id, callerSessionId, page)
    },

    /** Ends one session of the user; 404 when it is not theirs or already ended (as for the owner). */
    async revokeSession (actor: Actor, id: string, sessionId: string): Promise<void> {
      await findOrThrow(id)
      if (!await sessions.revoke(id, sessionId, 'revoked_by_admin')) throw apiError('NOT_FOUND')
      await audit.record({ action: 'session.revoked', actorId: actor.userId, subjectId: id, ip: actor.ip, details: { sessionId } })
    },

    /**
     * Mails the user a reset link through the durable outbox, as `forgot` does. A deactivated
     * account is refused (409 USER_INACTIVE) rather than silently skipped: the admin knows the
     * account and must know no link goes out (delivery itself also skips an inactive account).
     */
    async sendPasswordReset (actor: Actor, id: string): Promise<void> {
      const user = await findOrThrow(id)
      if (!user.isActive) throw apiError('USER_INACTIVE')
      await passwordReset.requestReset(user.email)
      await audit.record({ action: 'password.reset_sent', actorId: actor.userId, subjectId: id, ip: actor.ip })
    }
  }
}

export type AdminService = ReturnType<typeof createAdminService>
