// Forgotten passwords: a single-use, expiring link mailed to the account's address, and the reset it allows.
import type { Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import type { AuditEntry } from '../admin/audit.js'
import { isRecordNotFound } from '../../db/refusals.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { canonical } from '../accounts/canonical.js'
import { lockUser, resetPassword, userById } from '../accounts/user-store.js'
import { deleteEverySecondFactor } from '../mfa/factors.js'
import type { CredentialDeps } from './credentials.js'
import { voidUnfinishedChanges } from '../accounts/unfinished-changes.js'
import { suspendPasswordless } from '../passkeys/passkey-store.js'

export interface PasswordResetDeps extends CredentialDeps {
  throttle: LoginThrottle
}

export function createPasswordResetService ({ prisma, passwords, sessions, oneTimeTokens, outbox, audit, throttle, now }: PasswordResetDeps) {
  return {
    /**
     * Records the request in the outbox, before anything about the address is looked at:
     * the same single insert whether or not an account exists, so neither the answer nor its
     * timing tells (OWASP Forgot Password Cheat Sheet). The lookup, the token and the mail
     * happen at delivery (see MailDelivery), with the request's audit entry. Only an active
     * account gets a link; issuing it kills the account's earlier reset links.
     */
    async requestReset (email: string, ip: string): Promise<void> {
      await outbox.queue(prisma, { kind: 'password_reset', to: canonical(email), requestedFrom: ip })
      outbox.wake()
    },

    /** An admin's request, in the admin's transaction with its audit entry: both or neither (wake the outbox after the commit). */
    async requestResetIn (tx: Transaction, email: string, audited: AuditEntry): Promise<void> {
      await outbox.queue(tx, { kind: 'password_reset', to: canonical(email) })
      await audit.recordIn(tx, audited)
    },

    /**
     * Sets the new password (same policy as registration), ends every session and spends
     * the token, in one transaction whose conditional update lets a token work once even
     * under concurrency. The link was mailed to the account's address, so the reset also
     * marks that address verified. A token mailed to an address the account no longer has
     * is invalid. The same transaction ends any login backoff or lockout of the account's
     * identifiers: whoever holds the mailbox is never locked out (NIST SP 800-63B 3.2.2).
     * On an account whose address was never proven, the reset is the first proof of it, and
     * it removes the second factors: whoever registered someone else's address first and set
     * up a factor must not keep the account once its owner resets the password.
     */
    /** `ip`: the client that used the link, for the audit trail. */
    async reset (token: string, password: string, ip: string): Promise<void> {
      const found = await oneTimeTokens.inspect(token, ['password_reset'])
      if (found.status === 'invalid') throw apiError('RESET_TOKEN_INVALID')
      if (found.status === 'expired') throw apiError('RESET_TOKEN_EXPIRED')
      const user = await userById(prisma, found.userId, { email: true, username: true, isActive: true })
      if (user === null || !user.isActive || user.email !== found.email) throw apiError('RESET_TOKEN_INVALID')
      passwords.checkNew(password, [user.email, user.username])
      const passwordHash = await passwords.hash(password)
      try {
        await prisma.$transaction(async tx => {
          // The user's row first, as every writer of a user's rows takes it: issuing a link
          // takes it before the tokens, so a reset taking the token first could deadlock.
          await lockUser(tx, found.userId)
          if (!await oneTimeTokens.consume(tx, found.id)) throw apiError('RESET_TOKEN_INVALID')
          // The identifiers as of this lock (regression: as read before the hashing, so a
          // rename committed meanwhile kept the new name's wait; see the clearing below).
          const locked = await userById(tx, found.userId, { email: true, username: true, emailVerifiedAt: true })
          if (locked === null) throw apiError('RESET_TOKEN_INVALID')
          const provenAt = locked.emailVerifiedAt
          // Guarded by the address: an email change confirmed meanwhile voids the link.
          await resetPassword(tx, found.userId, found.email, passwordHash, provenAt ?? now())
          // The login challenges before the factors, in the order a login's second step takes them.
          await voidUnfinishedChanges(tx, oneTimeTokens, found.userId, now())
          await suspendPasswordless(tx, found.userId)
          const secondFactorsRemoved = provenAt === null && await deleteEverySecondFactor(tx, found.userId)
          if (secondFactorsRemoved) await outbox.queue(tx, { kind: 'mfa_disabled', to: found.email, byAdmin: false })
          await sessions.revokeAll(found.userId, 'password_reset', tx)
          await outbox.queue(tx, { kind: 'password_changed', to: found.email, everywhere: true })
          // In the same transaction: a reset that commits has lifted the wait, one that fails can be sent again.
          await throttle.clear(throttle.keys.account(locked), tx)
          await audit.recordIn(tx, { action: 'password.reset', actorId: found.userId, subjectId: found.userId, ip, ...(secondFactorsRemoved ? { details: { secondFactorsRemoved, recoveryCodes: 'ended' } } : {}) })
        })
      } catch (error) {
        if (isRecordNotFound(error)) throw apiError('RESET_TOKEN_INVALID')
        throw error
      }
      outbox.wake()
    }
  }
}

export type PasswordResetService = ReturnType<typeof createPasswordResetService>
