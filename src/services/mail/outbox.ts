// The durable outbox: every query of OutboxMail, and how a service promises a mail inside its own transaction.
import { randomUUID } from 'node:crypto'
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { iso, statement, type Sql } from '../../db/sql.js'
import type { MailKind } from '../../generated/prisma/enums.js'

/** A mail to send, as its template's values: never a secret (links are derived at delivery). */
export type QueuedMail =
  | { kind: 'verify_email' | 'confirm_email_change', to: string, tokenId: string }
  | { kind: 'email_change_notice', to: string, newEmail: string }
  | { kind: 'password_changed', to: string, everywhere: boolean }
  | { kind: 'mfa_enabled' | 'recovery_codes_regenerated', to: string }
  /**
   * The app's changes beside passkeys, and the last passkey's removal: kinds of their own, not
   * fields of the ones before, so that an older release beside this one fails them (and leaves
   * them to a newer instance) rather than send its own wording ("Two-step sign-in is off").
   * `codesReplaced`: the account's unused recovery codes died with the new set.
   */
  | { kind: 'app_added', to: string, codesReplaced: boolean }
  | { kind: 'app_removed', to: string }
  | { kind: 'last_passkey_removed', to: string, name: string }
  | { kind: 'mfa_disabled', to: string, byAdmin: boolean }
  | { kind: 'recovery_code_used', to: string, left: number }
  | { kind: 'passkey_added' | 'passkey_removed', to: string, name: string }
  | { kind: 'account_deleted', to: string, byAdmin: boolean }
  /** A sign-in that stopped at the second step, begun at `startedAt` (ISO 8601). */
  | { kind: 'sign_in_unfinished', to: string, startedAt: string }
  /**
   * A sign-in from a device the account does not know, or after failed attempts: queued by the
   * login's own statement (sessions/session-store.ts), never through `queue`; here for its shape.
   */
  | { kind: 'new_sign_in', to: string, at: string, ip: string, device: string, newDevice: boolean, failedAttempts: number }
  /**
   * Whether an account has the address is looked up at delivery, off the request path.
   * `requestedFrom`: the client address of a `forgot`, for the audit entry written then (an
   * admin's request is audited as it is made, and has none).
   */
  | { kind: 'password_reset', to: string, requestedFrom?: string }

/** A mail claimed for an attempt. */
export interface ClaimedMail {
  id: string
  kind: MailKind
  recipient: string
  data: Record<string, unknown> | null
  tokenId: string | null
  /** Attempts made, this one included. */
  attempts: number
  /**
   * The stored hash of its link's token while that token is unspent and unexpired; null when
   * it was spent, revoked or expired since the mail was queued, or the mail has no link (yet).
   * Whether the token was derived under the current AUTH_SECRET is for the renderer to tell:
   * the key is not in the database.
   */
  tokenHash: string | null
}

// Every registration sends a mail, so claiming and removing it are on registration's hot
// path: on the pool, planned once per connection, they cost about a millisecond of CPU less
// per mail than through Prisma (docs/benchmarks.md, "POST /auth/register").

// Locked rows are skipped, not waited for: another instance has claimed them.
const claimDue = statement<ClaimedMail>('outbox.claim', `
  UPDATE "OutboxMail" SET attempts = attempts + 1, "nextAttemptAt" = $2::timestamp(3)
  WHERE id IN (
    SELECT id FROM "OutboxMail" WHERE "nextAttemptAt" <= $1::timestamp(3)
    ORDER BY "nextAttemptAt" LIMIT $3
    FOR UPDATE SKIP LOCKED)
  RETURNING id, kind, recipient, data, "tokenId", attempts,
    (SELECT t."tokenHash" FROM "OneTimeToken" t WHERE t.id = "tokenId" AND t."usedAt" IS NULL AND t."expiresAt" > $1::timestamp(3)) AS "tokenHash"`)

const removeMail = statement('outbox.remove', 'DELETE FROM "OutboxMail" WHERE id = $1::uuid')

export interface MailOutboxDeps {
  prisma: PrismaClient
  sql: Sql
  now: () => Date
  /** Tells this instance's deliverer that a mail is waiting (after the commit). */
  wake: () => void
}

export function createMailOutbox ({ prisma, sql, now, wake }: MailOutboxDeps) {
  function rowOf (mail: QueuedMail) {
    const { kind, to, ...data } = mail
    const tokenId = 'tokenId' in data ? data.tokenId : null
    const values = 'tokenId' in data ? {} : data
    return { id: randomUUID(), kind, recipient: to, data: Object.keys(values).length === 0 ? undefined : values, tokenId, nextAttemptAt: now() }
  }

  return {
    /**
     * Writes `mail` in the caller's transaction (or alone): it is sent if and only if that
     * commits. Call `wake` after the commit for it to leave at once rather than at the next poll.
     */
    async queue (db: Db, mail: QueuedMail): Promise<void> {
      await db.outboxMail.create({ data: rowOf(mail) })
    },

    /** `queue` for many mails, in one statement. */
    async queueAll (db: Db, mails: QueuedMail[]): Promise<void> {
      if (mails.length > 0) await db.outboxMail.createMany({ data: mails.map(rowOf) })
    },

    /** The row of `mail`, for a statement that writes it with what it belongs to (an account's creation). */
    rowOf,

    wake,

    /**
     * Claims up to `limit` due mails for one attempt each, and makes them due again only
     * after `leaseSeconds`: another instance skips them meanwhile (the rows are locked while
     * claimed, and skipped rather than waited for), and a crash before the outcome is recorded
     * only delays them until then.
     */
    async claim (limit: number, leaseSeconds: number): Promise<ClaimedMail[]> {
      const at = now()
      return (await claimDue(sql, [iso(at), iso(new Date(at.getTime() + leaseSeconds * 1000)), limit])).rows
    },

    /** Sent, or given up. */
    async remove (id: string): Promise<void> {
      await removeMail(sql, [id])
    },

    async retryAt (id: string, at: Date): Promise<void> {
      await prisma.outboxMail.updateMany({ where: { id }, data: { nextAttemptAt: at } })
    },

    /** The mail's row as it stands, in `tx`: gone once sent, given up or removed. */
    async current (tx: Transaction, id: string): Promise<{ tokenId: string | null } | null> {
      return await tx.outboxMail.findUnique({ where: { id }, select: { tokenId: true } })
    },

    /** Ties a reset mail to the token issued for it at delivery, so a retry sends the same link. */
    async attachToken (tx: Transaction, id: string, tokenId: string): Promise<void> {
      await tx.outboxMail.update({ where: { id }, data: { tokenId } })
    }
  }
}

export type MailOutbox = ReturnType<typeof createMailOutbox>
