// UNVERIFIED_ACCOUNT_RETENTION_DAYS: accounts whose address nobody proved, left unused that long, are deleted, and their address and name are free again.
import type { PrismaClient } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import { Prisma } from '../../generated/prisma/client.js'
import type { AuditService } from '../admin/audit.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'

export interface UnverifiedAccountDeps {
  prisma: PrismaClient
  audit: Pick<AuditService, 'recordAllIn'>
  throttle: Pick<LoginThrottle, 'keys' | 'clear'>
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

export function createUnverifiedAccountExpiry ({ prisma, audit, throttle }: UnverifiedAccountDeps) {
  /**
   * Deletes up to `batch` abandoned accounts, each with a `user.deleted` entry (`by:
   * 'retention'`) and without the failure counts of its identifiers, all in one transaction.
   * Rows another transaction holds are skipped, never waited for; a sign-in that comes for an
   * account while the batch holds it waits, and finds it gone. Returns how many it locked, so
   * that a full batch asks for another.
   */
  return async function deleteAbandonedBefore (since: Date, at: Date, batch: number): Promise<number> {
    return await prisma.$transaction(async tx => {
      const locked = await tx.$queryRaw<Array<{ id: string }>>`
        SELECT u.id FROM "User" u WHERE ${abandoned(since, at)} ORDER BY u."createdAt" LIMIT ${batch} FOR UPDATE OF u SKIP LOCKED`
      if (locked.length === 0) return 0
      // Asked again in a statement of its own, which sees what committed while the rows were
      // being locked: a sign-in or a link of that moment keeps its account.
      const deleted = await tx.$queryRaw<Array<{ id: string, email: string, username: string | null }>>`
        DELETE FROM "User" u WHERE u.id = ANY(${locked.map(row => row.id)}::uuid[]) AND ${abandoned(since, at)} RETURNING u.id, u.email, u.username`
      // Whoever registers the address or the name next starts with no failures of this account's.
      await throttle.clear(deleted.flatMap(account => throttle.keys.account(account)), tx)
      await audit.recordAllIn(tx, deleted.map(account => ({ action: 'user.deleted', subjectId: account.id, details: { by: 'retention', email: account.email } })))
      return locked.length
    })
  }
}

export type DeleteAbandonedAccounts = ReturnType<typeof createUnverifiedAccountExpiry>
