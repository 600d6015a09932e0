// Proving control of an address: verification after registration, and email changes confirmed by the new mailbox.
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { isForeignKeyViolation, isUniqueViolation } from '../../db/refusals.js'
import type { AuditService } from '../admin/audit.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { liveSessionOf } from '../sessions/session-store.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import { confirmEmailChange, liveCallerOf, lockUser, markEmailVerified, userByEmail, userById } from './user-store.js'

export interface EmailVerificationDeps {
  prisma: PrismaClient
  oneTimeTokens: OneTimeTokenService
  outbox: MailOutbox
  audit: Pick<AuditService, 'recordIn'>
  throttle: Pick<LoginThrottle, 'move' | 'keys'>
  now: () => Date
}

/**
 * A login refused for an unverified address mails a link only if none went out this long
 * ago: that link still works, and every refused login would otherwise mail the address.
 */
export const REMINDER_INTERVAL_SECONDS = 300

type LinkPurpose = 'email_verify' | 'email_change'

/** Whether a mail to `address` may go now: its mailbox's budget (the caller's rate limits). */
export type MailAdmission = (address: string) => Promise<boolean>

export function createEmailVerificationService ({ prisma, oneTimeTokens, outbox, audit, throttle, now }: EmailVerificationDeps) {
  /** Issues a token for `email` and queues the mail that carries it, inside `tx` (wake the outbox after the commit). */
  async function queueLink (tx: Transaction, userId: string, purpose: LinkPurpose, email: string, sessionId: string | null = null): Promise<void> {
    const tokenId = await oneTimeTokens.issue(userId, purpose, email, tx, sessionId)
    await outbox.queue(tx, { kind: purpose === 'email_verify' ? 'verify_email' : 'confirm_email_change', to: email, tokenId })
  }

  /**
   * A link in a transaction of its own: the mail is promised once this resolves. An account
   * deleted since the caller's session was read takes its sessions along (regression: a 500).
   * An email change is looked at again under the user's row: one that ended since it was read
   * (a logout of its session, say) is mailed nothing (regression: a resend racing that logout
   * mailed a dead link to the address).
   */
  async function sendLink (userId: string, purpose: LinkPurpose, email: string, sessionId: string | null): Promise<void> {
    const sent = await prisma.$transaction(async tx => {
      await lockUser(tx, userId)
      if (purpose === 'email_change' && !await changeStillAsked(tx, userId, email, sessionId, now())) return false
      await queueLink(tx, userId, purpose, email, sessionId)
      return true
    }).catch((error: unknown) => {
      throw isForeignKeyViolation(error) ? apiError('AUTH_SESSION_REVOKED') : error
    })
    if (sent) outbox.wake()
  }

  return {
    /**
     * After a login refused for the unverified `email`: a new link (the older ones die),
     * unless one was issued within REMINDER_INTERVAL_SECONDS, or the mailbox's budget is
     * spent (`admit`): nobody has proven to hold the address, and many accounts can name one
     * mailbox (regression: each account's reminders went outside the budget, every five
     * minutes for ever). The check and the issue take turns on the user's row, so refused
     * logins at once mail one link between them.
     */
    async remindUnverified (userId: string, email: string, admit: MailAdmission): Promise<void> {
      const since = new Date(now().getTime() - REMINDER_INTERVAL_SECONDS * 1000)
      const sent = await prisma.$transaction(async tx => {
        // Gone since the password was checked (deleted, or expired unverified): nobody to remind (regression: a 500).
        if (!await lockUser(tx, userId)) return false
        if (await oneTimeTokens.hasLiveLink(tx, userId, 'email_verify', email, since)) return false
        if (!await admit(email)) return false
        await queueLink(tx, userId, 'email_verify', email)
        return true
      })
      if (sent) outbox.wake()
    },

    /**
     * Inside the caller's update: a new address only becomes `pendingEmail`; it replaces
     * `email` when the token mailed to it comes back, so nobody can take over an address
     * they cannot read. The old address is told, when it was proven (regression: a notice to
     * an address nobody had proven went outside every mail budget). Asking for the current address cancels a
     * pending change. An address of another account is 409 EMAIL_TAKEN (checked again at
     * confirmation, where the unique index has the last word). Returns the new
     * `pendingEmail` (null when the request cancels a pending change); its mails are queued
     * in the same transaction (wake the outbox after the commit).
     */
    async stageChange (tx: Transaction, user: { id: string, email: string, emailVerifiedAt: Date | null }, requested: string, sessionId: string): Promise<string | null> {
      if (requested === user.email) {
        await oneTimeTokens.revoke(tx, user.id, 'email_change')
        return null
      }
      if (await userByEmail(tx, requested, { id: true }) !== null) throw apiError('EMAIL_TAKEN')
      await queueLink(tx, user.id, 'email_change', requested, sessionId)
      if (user.emailVerifiedAt !== null) await outbox.queue(tx, { kind: 'email_change_notice', to: user.email, newEmail: requested })
      return requested
    },

    /**
     * Mails a new link: for the pending address if a change is pending (its link still works:
     * a change whose link ended has ended too), else for the current one while unverified. A
     * verified account with nothing pending gets no mail (202 all the same: the call is idempotent). The newest link is the only one that works. `admit` sees
     * the address before anything is mailed to it, and refuses by throwing: nobody has proven
     * to hold it, so its mails are capped per address, not only per account (docs/security.md, Rate limits).
     */
    async resend (userId: string, sessionId: string, admit: (address: string) => Promise<void>): Promise<void> {
      const user = await liveCallerOf(prisma, userId, sessionId, now(), { email: true, pendingEmail: true, emailVerifiedAt: true })
      if (user === null) throw apiError('AUTH_SESSION_REVOKED')
      // The change's new link is for the session its first was for, while that one lives.
      const change = user.pendingEmail === null ? null : await oneTimeTokens.liveLink(prisma, userId, 'email_change', user.pendingEmail)
      const changeLives = change !== null && await askingSessionLives(prisma, userId, change.sessionId, now())
      const link = changeLives && user.pendingEmail !== null
        ? { purpose: 'email_change' as const, address: user.pendingEmail, sessionId: change.sessionId }
        : user.emailVerifiedAt === null ? { purpose: 'email_verify' as const, address: user.email, sessionId: null } : null
      if (link === null) return
      await admit(link.address)
      await sendLink(userId, link.purpose, link.address, link.sessionId)
    },

    verify: verifier({ prisma, oneTimeTokens, audit, throttle, now })
  }
}

/**
 * Spends a mailed token, once (conditional update in one transaction with its effect). A
 * verification token only counts for the address it was mailed to and still in use; a
 * change token moves `pendingEmail` to `email`, verified.
 */
function verifier ({ prisma, oneTimeTokens, audit, throttle, now }: Pick<EmailVerificationDeps, 'prisma' | 'oneTimeTokens' | 'audit' | 'throttle' | 'now'>) {
  /** `ip`: the client that followed the link, for the audit trail. */
  return async function verify (token: string, ip: string): Promise<void> {
    const found = await oneTimeTokens.inspect(token, ['email_verify', 'email_change'])
    if (found.status === 'invalid') throw apiError('VERIFICATION_TOKEN_INVALID')
    if (found.status === 'expired') throw apiError('VERIFICATION_TOKEN_EXPIRED')
    await prisma.$transaction(async tx => {
      // The user's row before the token's, in the order issuing a link takes them (no deadlock
      // with a resend), and so that a reset or change committed meanwhile is seen.
      await lockUser(tx, found.userId)
      const user = await userById(tx, found.userId, { email: true, pendingEmail: true, emailVerifiedAt: true, isActive: true })
      const address = found.purpose === 'email_verify' ? user?.email : user?.pendingEmail
      if (user === null || !user.isActive || address !== found.email) throw apiError('VERIFICATION_TOKEN_INVALID')
      if (!await askingSessionLives(tx, found.userId, found.sessionId, now())) throw apiError('VERIFICATION_TOKEN_INVALID')
      if (!await oneTimeTokens.consume(tx, found.id)) throw apiError('VERIFICATION_TOKEN_INVALID')
      if (found.purpose === 'email_verify') {
        await markEmailVerified(tx, found.userId, user.emailVerifiedAt ?? now())
        // Only the first proof of the address: a link followed after a reset had proven it changes nothing.
        if (user.emailVerifiedAt === null) await audit.recordIn(tx, { action: 'email.verified', actorId: found.userId, subjectId: found.userId, ip })
        return
      }
      if (await userByEmail(tx, found.email, { id: true }) !== null) throw apiError('EMAIL_TAKEN')
      await confirmEmailChange(tx, found.userId, found.email, now())
      // The former address's failed logins go with the account, as a username's at a rename:
      // its next holder starts with none (regression: locked out), the account keeps its wait.
      await throttle.move(throttle.keys.of(user.email), throttle.keys.of(found.email), tx)
      // The account's recovery address changed hands: the one change an investigator of a takeover looks for.
      await audit.recordIn(tx, { action: 'email.changed', actorId: found.userId, subjectId: found.userId, ip, details: { from: user.email, to: found.email } })
      // The links mailed to the old address die for good: a change back to it must not bring
      // one a former mailbox holder saw back to life.
      await oneTimeTokens.revoke(tx, found.userId, 'password_reset')
      await oneTimeTokens.revoke(tx, found.userId, 'email_verify')
    }).catch(rethrowTaken)
  }
}

export type EmailVerificationService = ReturnType<typeof createEmailVerificationService>

/**
 * Whether the session an email change's link is for still lives: the change ends with it,
 * however it ended (regression: an intruder who logged out, or whose session expired, left a
 * change the owner could no longer end from the session list, and confirmed it later). A link
 * an older release issued names none.
 */
async function askingSessionLives (db: Db, userId: string, sessionId: string | null, at: Date): Promise<boolean> {
  return sessionId === null || await liveSessionOf(db, userId, sessionId, at, { id: true }) !== null
}

/** Whether the change to `email` is still pending, for the session `sessionId` that lives. */
async function changeStillAsked (db: Db, userId: string, email: string, sessionId: string | null, at: Date): Promise<boolean> {
  const user = await userById(db, userId, { pendingEmail: true })
  return user?.pendingEmail === email && await askingSessionLives(db, userId, sessionId, at)
}

// Registered by someone else between the check and the update: the unique index refuses it.
function rethrowTaken (error: unknown): never {
  if (isUniqueViolation(error)) throw apiError('EMAIL_TAKEN')
  throw error
}
