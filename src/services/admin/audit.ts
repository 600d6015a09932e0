// The audit trail: security events and admin actions, in a table, readable by admins. Never a secret in it.
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
      const rows = await prisma.auditEvent.findMany({
        where: { AND: [subjectId === undefined ? {} : { subjectId }, action === undefined ? {} : { action }, after(decodeCursor(cursor))] },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit + 1
      })
      const page = rows.slice(0, limit)
      // One query for the page's users, so that a reader of the trail needs no call per user.
      const emails = await emailsOf(prisma, [...new Set(page.flatMap(row => [row.actorId, row.subjectId]).filter(id => id !== null))])
      const emailOf = (id: string | null) => id === null ? null : emails.get(id) ?? null
      const items = page.map(row => ({ ...row, createdAt: row.createdAt.toISOString(), actorEmail: emailOf(row.actorId), subjectEmail: emailOf(row.subjectId), details: row.details }))
      const last = rows.length > limit ? rows[limit - 1] : undefined
      return { items, nextCursor: last === undefined ? null : encodeCursor({ at: last.createdAt, id: last.id }) }
    }
  }
}

export type AuditService = ReturnType<typeof createAuditService>
