// UNVERIFIED_ACCOUNT_RETENTION_DAYS: accounts whose address nobody proved, left unused that long, are deleted, and their address and name are free again.
import type { PrismaClient } from '../../db/prisma.js'
import type { AuditService } from '../admin/audit.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { deleteAbandonedAccounts, lockAbandonedAccounts } from './user-store.js'

export interface UnverifiedAccountDeps {
  prisma: PrismaClient
  audit: Pick<AuditService, 'recordAllIn'>
  throttle: Pick<LoginThrottle, 'keys' | 'clear'>
}

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
      const locked = await lockAbandonedAccounts(tx, since, at, batch)
      if (locked.length === 0) return 0
      const deleted = await deleteAbandonedAccounts(tx, locked, since, at)
      // Whoever registers the address or the name next starts with no failures of this account's.
      await throttle.clear(deleted.flatMap(account => throttle.keys.everyKeyOf(account)), tx)
      await audit.recordAllIn(tx, deleted.map(account => ({ action: 'user.deleted', subjectId: account.id, details: { by: 'retention', email: account.email } })))
      return locked.length
    })
  }
}

export type DeleteAbandonedAccounts = ReturnType<typeof createUnverifiedAccountExpiry>
