// What the service keeps of people, for no longer than its settings say: one pass deletes what is past them (plugins/retention.ts runs it).
import type { PrismaClient } from '../db/prisma.js'
import type { DeleteAbandonedAccounts } from './accounts/unverified-accounts.js'
import type { AuditService } from './admin/audit.js'
import { sweepExpiredFailures } from './sessions/login-throttle.js'
import { deleteSessionsEndedBefore } from './sessions/session-store.js'
import { deleteLinksEndedBefore } from './tokens/one-time-tokens.js'
import { clearAbandonedEmailChanges } from './accounts/user-store.js'
import type { UnfinishedSignIns } from './mfa/unfinished-sign-ins.js'
import { sweepExpiredCeremonies } from './passkeys/ceremony-challenges.js'
import { deleteAbandonedTotpSetUps } from './mfa/factors.js'

const DAY_MS = 86_400_000
// Rows deleted per statement: a backlog (the first pass after an upgrade) never holds one long transaction.
const DELETE_BATCH = 1000

export interface RetentionDeps {
  prisma: PrismaClient
  audit: Pick<AuditService, 'deleteWrittenBefore'>
  unfinishedSignIns: UnfinishedSignIns
  now: () => Date
  /** AUDIT_RETENTION_DAYS: 0 keeps every entry. */
  auditDays: number
  /** SESSION_RETENTION_DAYS: how long an ended session, or a used or expired link, is kept. */
  endedDays: number
  /** UNVERIFIED_ACCOUNT_RETENTION_DAYS: 0 keeps every account. */
  unverifiedDays: number
  deleteAbandonedAccounts: DeleteAbandonedAccounts
}

/** What one pass deleted. */
export interface Deleted {
  auditEntries: number
  sessions: number
  links: number
  /** Email changes whose link ended: their address unproven, cleared. */
  emailChanges: number
  /** Passkey ceremony challenges expired (their own requests sweep them too, but only while requests come; login challenges have a sweep of their own, sweepChallenges). */
  passkeyChallenges: number
  failureCounts: number
  unverifiedAccounts: number
  /** Authenticator-app set-ups never confirmed, past the time to confirm them. */
  totpSetUps: number
}

/** Runs `batch` until it deletes less than a whole batch, or the pass is stopped. */
async function inBatches (batch: () => Promise<number>, signal?: AbortSignal): Promise<number> {
  let deleted = 0
  for (;;) {
    const count = await batch()
    deleted += count
    if (count < DELETE_BATCH || signal?.aborted === true) return deleted
  }
}

export function createRetentionService ({ prisma, audit, unfinishedSignIns, now, auditDays, endedDays, unverifiedDays, deleteAbandonedAccounts }: RetentionDeps) {
  return {
    /**
     * Deletes the audit entries past AUDIT_RETENTION_DAYS, the sessions and mailed links that
     * ended more than SESSION_RETENTION_DAYS ago (a login deletes its own user's; a user who
     * never logs in again had theirs kept for ever), the new addresses of email changes whose
     * link ended, the expired passkey ceremony challenges, and the failure counts past their expiry
     * (which the next failed login would sweep), the accounts never verified and unused for
     * UNVERIFIED_ACCOUNT_RETENTION_DAYS, and the authenticator-app set-ups never confirmed in
     * time. Instances at once skip each other's rows (but the set-ups', few: one statement).
     */
    async pass (signal?: AbortSignal): Promise<Deleted> {
      const at = now()
      const daysAgo = (days: number) => new Date(at.getTime() - days * DAY_MS)
      const endedBefore = daysAgo(endedDays)
      return {
        auditEntries: auditDays === 0 ? 0 : await inBatches(() => audit.deleteWrittenBefore(daysAgo(auditDays), DELETE_BATCH), signal),
        sessions: await inBatches(() => deleteSessionsEndedBefore(prisma, endedBefore, DELETE_BATCH), signal),
        links: await inBatches(() => deleteLinksEndedBefore(prisma, endedBefore, DELETE_BATCH), signal),
        emailChanges: await inBatches(() => clearAbandonedEmailChanges(prisma, at, DELETE_BATCH), signal),
        passkeyChallenges: await inBatches(() => sweepExpiredCeremonies(prisma, at, DELETE_BATCH), signal),
        failureCounts: await inBatches(() => sweepExpiredFailures(prisma, at, DELETE_BATCH), signal),
        unverifiedAccounts: unverifiedDays === 0 ? 0 : await inBatches(() => deleteAbandonedAccounts(daysAgo(unverifiedDays), at, DELETE_BATCH), signal),
        totpSetUps: await deleteAbandonedTotpSetUps(prisma, at)
      }
    },

    /**
     * Deletes the expired login challenges, telling the owners of those never met (see
     * UnfinishedSignIns): more often than the pass, so that the mail follows the sign-in within
     * minutes, and apart from it, so that neither's failure stops the other. How many it deleted.
     */
    sweepChallenges: unfinishedSignIns.sweep
  }
}

export type RetentionService = ReturnType<typeof createRetentionService>
