// Sign-ins that stopped at the second step: their expired challenges are swept, and each owner is told by mail that someone has the password (ASVS 6.3.5).
import type { PrismaClient } from '../../db/prisma.js'
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

export interface UnfinishedSignInDeps {
  prisma: PrismaClient
  outbox: MailOutbox
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

export function createUnfinishedSignIns ({ prisma, outbox, audit, now }: UnfinishedSignInDeps) {
  return {
    /**
     * Deletes everyone's login challenges expired now (see sweepExpiredChallenges), and in the
     * same transaction mails the owner of each account whose challenge expired without a proof:
     * someone entered the password and went no further. No mail when the account has signed in
     * since its latest such challenge began (most often the owner's own second try), or was
     * told within the hour. How many challenges it deleted.
     */
    async sweep (): Promise<number> {
      const at = now()
      const { swept, told } = await prisma.$transaction(async tx => {
        const swept = await sweepExpiredChallenges(tx, at)
        const latest = latestUnmetByUser(swept)
        if (latest.size === 0) return { swept: swept.length, told: 0 }
        const owners = await tx.$queryRaw<Array<{ id: string, email: string, startedAt: Date }>>`
          SELECT u.id, u.email, f.started_at AS "startedAt"
          FROM unnest(${[...latest.keys()]}::uuid[], ${[...latest.values()].map(iso)}::timestamp(3)[]) AS f(id, started_at)
          JOIN "User" u ON u.id = f.id
          WHERE NOT EXISTS (SELECT 1 FROM "Session" s WHERE s."userId" = u.id AND s."createdAt" >= f.started_at)
            AND NOT EXISTS (
              SELECT 1 FROM "AuditEvent" a
              WHERE a."subjectId" = u.id AND a.action = 'login.second_step_unfinished' AND a."createdAt" > ${iso(new Date(at.getTime() - NOTICE_INTERVAL_MS))}::timestamp(3))`
        for (const owner of owners) await outbox.queue(tx, { kind: 'sign_in_unfinished', to: owner.email, startedAt: owner.startedAt.toISOString() })
        await audit.recordAllIn(tx, owners.map(owner => ({ action: 'login.second_step_unfinished' as const, subjectId: owner.id, details: { startedAt: owner.startedAt.toISOString() } })))
        return { swept: swept.length, told: owners.length }
      })
      if (told > 0) outbox.wake()
      return swept
    }
  }
}

export type UnfinishedSignIns = ReturnType<typeof createUnfinishedSignIns>
