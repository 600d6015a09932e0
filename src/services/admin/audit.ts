// The audit trail: security events and admin actions, in a table, readable by admins (and each user's own entries by that user). Never a secret in it.
import type { PrismaClient, Transaction } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import type { Prisma } from '../../generated/prisma/client.js'
import type { AuditAction } from './audit-actions.js'
import { after, decodeCursor, encodeCursor, type Page } from '../pagination.js'
import { emailsOf } from '../accounts/user-store.js'

export interface AuditEntry {
  action: AuditAction
  actorId?: string | null
  subjectId?: string | null
  ip?: string | null
  /** Context such as the changed fields; callers never put passwords, tokens or cookies here. */
  details?: Prisma.InputJsonObject
}

/** Who acts and from where, for the audit trail. */
export interface Actor {
  userId: string
  ip: string
}

export interface AuditView {
  id: string
  createdAt: string
  action: string
  actorId: string | null
  /** The acting user's address now: null with no actor, or once that user is deleted. */
  actorEmail: string | null
  subjectId: string | null
  /** Likewise for the user the entry is about. */
  subjectEmail: string | null
  ip: string | null
  details: unknown
}

/** What is done through a mailed link, by whoever holds it: the entry names its user as actor, but nobody proved the account. */
const BY_LINK: ReadonlySet<string> = new Set(['password.reset', 'email.verified', 'email.changed'] satisfies AuditAction[])

/** An entry as its user sees it (`GET /users/me/activity`): who acted is told by kind, never by id or address. */
export interface ActivityView {
  id: string
  createdAt: string
  action: string
  /** `self`: whoever proved the account (its password, a passkey, a session of it); `admin`: an admin; null: nobody who proved it (a wrong attempt, a mailed link, the service itself). */
  by: 'self' | 'admin' | null
  /** Where the request came from; null for an admin's (theirs is not the user's to see). */
  ip: string | null
  details: unknown
}

export interface AuditQuery {
  limit: number
  cursor?: string | undefined
  subjectId?: string | undefined
  action?: AuditAction | undefined
}

export interface AuditDeps {
  prisma: PrismaClient
  now: () => Date
  /** Where a failure to write the trail is reported: it never fails the request that caused it. */
  onError: (error: unknown, entry: AuditEntry) => void
}

export function createAuditService ({ prisma, now, onError }: AuditDeps) {
  const rowOf = (entry: AuditEntry) =>
    ({ action: entry.action, actorId: entry.actorId ?? null, subjectId: entry.subjectId ?? null, ip: entry.ip ?? null, details: entry.details ?? {}, createdAt: now() })

  /** One page of the entries `where` selects, newest first: `limit` of them, and the cursor of the next page. */
  async function pageOf (where: Prisma.AuditEventWhereInput, limit: number, cursor: string | undefined) {
    const rows = await prisma.auditEvent.findMany({ where: { AND: [where, after(decodeCursor(cursor))] }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: limit + 1 })
    const last = rows.length > limit ? rows[limit - 1] : undefined
    return { rows: rows.slice(0, limit), nextCursor: last === undefined ? null : encodeCursor({ at: last.createdAt, id: last.id }) }
  }

  return {
    /** Appends an entry; a failure is reported, not thrown, so auditing never breaks a login. */
    async record (entry: AuditEntry): Promise<void> {
      try {
        await prisma.auditEvent.create({ data: rowOf(entry) })
      } catch (error) {
        onError(error, entry)
      }
    },

    /**
     * Appends an entry in the caller's transaction, so the change and its entry commit
     * together or not at all. A failure is thrown: a failed statement has already doomed the
     * transaction, and swallowing it would let the caller's commit turn into a rollback unseen.
     */
    async recordIn (tx: Transaction, entry: AuditEntry): Promise<void> {
      await tx.auditEvent.create({ data: rowOf(entry) })
    },

    /** `recordIn` for many entries, in one statement. */
    async recordAllIn (tx: Transaction, entries: AuditEntry[]): Promise<void> {
      if (entries.length > 0) await tx.auditEvent.createMany({ data: entries.map(rowOf) })
    },

    /**
     * Deletes up to `batch` entries written before `cutoff` (AUDIT_RETENTION_DAYS, the retention
     * pass's); rows another instance's pass holds are skipped, never waited for. Returns how
     * many it deleted.
     */
    async deleteWrittenBefore (cutoff: Date, batch: number): Promise<number> {
      return await prisma.$executeRaw`DELETE FROM "AuditEvent" WHERE id IN (SELECT id FROM "AuditEvent" WHERE "createdAt" < ${iso(cutoff)}::timestamp(3) ORDER BY "createdAt" LIMIT ${batch} FOR UPDATE SKIP LOCKED)`
    },

    /** Newest first, `limit` at a time; optionally only the entries about one user, of one action, or both. */
    async list ({ limit, cursor, subjectId, action }: AuditQuery): Promise<Page<AuditView>> {
      const { rows, nextCursor } = await pageOf({ ...(subjectId === undefined ? {} : { subjectId }), ...(action === undefined ? {} : { action }) }, limit, cursor)
      // One query for the page's users, so that a reader of the trail needs no call per user.
      const emails = await emailsOf(prisma, [...new Set(rows.flatMap(row => [row.actorId, row.subjectId]).filter(id => id !== null))])
      const emailOf = (id: string | null) => id === null ? null : emails.get(id) ?? null
      const items = rows.map(row => ({ ...row, createdAt: row.createdAt.toISOString(), actorEmail: emailOf(row.actorId), subjectEmail: emailOf(row.subjectId), details: row.details }))
      return { items, nextCursor }
    },

    /**
     * The entries about `userId`, newest first, as that user sees them: what was done to their
     * account, by them, by an admin, or by someone who did not prove it (a wrong password, a
     * mailed link), for AUDIT_RETENTION_DAYS. An admin is named by role only, without the
     * address they acted from: the user learns that an admin acted, not which one, nor where from.
     */
    async ownActivity (userId: string, { limit, cursor }: { limit: number, cursor?: string | undefined }): Promise<Page<ActivityView>> {
      const { rows, nextCursor } = await pageOf({ subjectId: userId }, limit, cursor)
      const items = rows.map(row => {
        const by = row.actorId === null || BY_LINK.has(row.action) ? null : row.actorId === userId ? 'self' as const : 'admin' as const
        return { id: row.id, createdAt: row.createdAt.toISOString(), action: row.action, by, ip: by === 'admin' ? null : row.ip, details: row.details }
      })
      return { items, nextCursor }
    }
  }
}

export type AuditService = ReturnType<typeof createAuditService>
