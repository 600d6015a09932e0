// Sign-ins that stopped at the second step: their expired challenges are swept, and each owner is told by mail that someone has the password (ASVS 6.3.5).
import { setTimeout as sleep } from 'node:timers/promises'
import { lockAllFor } from '../../db/locks.js'
import type { PrismaClient, Transaction } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import type { AuditService } from '../admin/audit.js'
import type { MailOutbox } from '../mail/outbox.js'
import { sweepExpiredChallenges, type SweptChallenge } from './challenges.js'

/**
 * At most one notice per account in this time: whoever has the password and stops at the
 * second step again and again must not fill the owner's mailbox. The owner's activity lists
 * every challenge issued (`mfa.challenge_issued`).
 */
const NOTICE_INTERVAL_MS = 60 * 60 * 1000
/**
 * Challenges swept per transaction: a backlog (a credential-stuffing run with right passwords
 * against accounts with a second factor, an instance down for a while) is worked off in short
 * transactions, each well within the database's statement timeout (regression: one
 * transaction for the whole backlog passed it at a few thousand accounts, rolled back, and
 * failed again every minute, telling nobody).
 */
const SWEEP_BATCH = 500
/**
 * Between full batches: the embedded database serves one connection, and the requests waiting
 * for it go in between (a login waited for batch after batch, ten times its time).
 */
const PAUSE_BETWEEN_BATCHES_MS = 100

export interface UnfinishedSignInDeps {
  prisma: PrismaClient
  outbox: Pick<MailOutbox, 'queueAll' | 'wake'>
  audit: Pick<AuditService, 'recordAllIn'>
  now: () => Date
}

/** Per account, when its latest challenge that was never met began. */
function latestUnmetByUser (swept: SweptChallenge[]): Map<string, Date> {
  const latest = new Map<string, Date>()
  for (const { userId, met, createdAt } of swept) {
    const known = latest.get(userId)
    if (!met && (known === undefined || createdAt > known)) latest.set(userId, createdAt)
  }
  return latest
}

/**
 * The owners to tell, of the accounts whose latest unmet challenge began at the time given:
 * not those signed in since (most often the owner's own second try), nor those told within
 * NOTICE_INTERVAL_MS of `at`. Each account's notice is decided under a lock of its own, taken
 * in one order, so that sweeps at once (instances, batches of one backlog) tell it once
 * (regression: two instances each told one account, whose challenges their batches shared).
 */
async function ownersToTell (tx: Transaction, latest: Map<string, Date>, at: Date) {
  await lockAllFor(tx, [...latest.keys()].map(userId => `unfinished-sign-in:${userId}`))
  return await tx.$queryRaw<Array<{ id: string, email: string, startedAt: Date }>>`
    SELECT u.id, u.email, f.started_at AS "startedAt"
    FROM unnest(${[...latest.keys()]}::uuid[], ${[...latest.values()].map(iso)}::timestamp(3)[]) AS f(id, started_at)
    JOIN "User" u ON u.id = f.id
    WHERE NOT EXISTS (SELECT 1 FROM "Session" s WHERE s."userId" = u.id AND s."createdAt" >= f.started_at)
      AND NOT EXISTS (
        SELECT 1 FROM "AuditEvent" a
        WHERE a."subjectId" = u.id AND a.action = 'login.second_step_unfinished' AND a."createdAt" > ${iso(new Date(at.getTime() - NOTICE_INTERVAL_MS))}::timestamp(3))`
}

export function createUnfinishedSignIns ({ prisma, outbox, audit, now }: UnfinishedSignInDeps) {
  /** One batch: deleted and told in one transaction. How many it deleted, and whether it queued a mail. */
  async function sweepBatch (): Promise<{ swept: number, told: boolean }> {
    return await prisma.$transaction(async tx => {
      const at = now()
      const swept = await sweepExpiredChallenges(tx, at, SWEEP_BATCH)
      const latest = latestUnmetByUser(swept)
      const owners = latest.size === 0 ? [] : await ownersToTell(tx, latest, at)
      await outbox.queueAll(tx, owners.map(owner => ({ kind: 'sign_in_unfinished' as const, to: owner.email, startedAt: owner.startedAt.toISOString() })))
      await audit.recordAllIn(tx, owners.map(owner => ({ action: 'login.second_step_unfinished' as const, subjectId: owner.id, details: { startedAt: owner.startedAt.toISOString() } })))
      return { swept: swept.length, told: owners.length > 0 }
    })
  }

  return {
    /**
     * Deletes everyone's login challenges expired now (see sweepExpiredChallenges), voided ones
     * included, in batches, and in each batch's transaction mails the owner of each account
     * whose challenge expired without a proof: someone entered the password and went no further.
     * No mail when the account has signed in since its latest such challenge began, or was told
     * within the hour. Stops between batches once `signal` is aborted. How many it deleted.
     */
    async sweep (signal?: AbortSignal): Promise<number> {
      let deleted = 0
      for (;;) {
        const { swept, told } = await sweepBatch()
        if (told) outbox.wake()
        deleted += swept
        if (swept < SWEEP_BATCH || signal?.aborted === true) return deleted
        await sleep(PAUSE_BETWEEN_BATCHES_MS)
      }
    }
  }
}

export type UnfinishedSignIns = ReturnType<typeof createUnfinishedSignIns>
