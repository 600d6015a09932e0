// What only the holder of the current password may do: change it, delete the account, or give the account a new way in.
import type { PrismaClient } from '../../db/prisma.js'
import type { CheckedPassword } from './checked-password.js'
import { apiError } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import type { PasswordService } from './passwords.js'
import type { SessionService } from '../sessions/sessions.js'
import { deleteUser, liveCallerOf, lockUser, replacePasswordHash, userById } from '../accounts/user-store.js'
import { assertDeletionLeavesAnAdmin, queueDeletionNotice } from '../admin/users.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import { assertFactorProvenBeside } from '../mfa/held-proofs.js'
import { addressAttempt } from '../mfa/throttled-attempts.js'
import { voidUnfinishedChanges } from '../accounts/unfinished-changes.js'
import { emailOf } from '../accounts/email-of.js'
import { suspendPasswordless } from '../passkeys/passkey-store.js'

export interface CredentialDeps {
  prisma: PrismaClient
  passwords: PasswordService
  sessions: SessionService
  oneTimeTokens: OneTimeTokenService
  outbox: MailOutbox
  audit: AuditService
  /** The login backoff: a wrong current password counts toward it as a failed login does. */
  throttle: LoginThrottle
  now: () => Date
}

/** The caller: their user, their session, and the client address the audit trail records. */
export interface CredentialCaller { userId: string, sessionId: string, ip: string }

/** What the current password was asked for: the audit entry of a wrong one says it. */
export type PasswordCheckPurpose = 'password_change' | 'account_deletion' | 'totp_setup' | 'passkey_registration' | 'recovery_codes' | 'email_change'

export function createCredentialService ({ prisma, passwords, sessions, oneTimeTokens, outbox, audit, throttle, now }: CredentialDeps) {
  /**
   * The caller's row, only while their session is live; the current password must match it.
   * A wrong one counts toward the account's login backoff, whose wait applies here too (429),
   * checked in turn with the logins by the address (see addressAttempt): a stolen session is no
   * way to guess the password faster than a login is, nor to keep the password hashing busy.
   */
  async function provenCaller ({ userId, sessionId, ip }: CredentialCaller, currentPassword: string, during: PasswordCheckPurpose) {
    const user = await liveCallerOf(prisma, userId, sessionId, now(), { email: true, username: true, passwordHash: true })
    if (user === null) throw apiError('AUTH_SESSION_REVOKED')
    const { refusal } = await addressAttempt(throttle, user, async () =>
      ({ refusal: await passwords.verify(user.passwordHash, currentPassword) ? null : apiError('INVALID_CURRENT_PASSWORD') }))
    if (refusal === null) return user
    await audit.record({ action: 'password.check_failed', actorId: userId, subjectId: userId, ip, details: { during } })
    throw refusal
  }

  return {
    /**
     * The check that stands before a new way into the account: an authenticator app, a passkey,
     * recovery codes, another address. Fresh authentication alone is not enough there: a login's
     * own access token is fresh, and whoever took it in its first minutes (from a log, a proxy, a
     * device) would set up a factor of theirs, which then keeps the owner's sessions from every
     * change that needs a factor, or move the address and take the account with a reset. Only
     * the password, which no token carries, tells the owner from the token's thief. The write it
     * allows checks again, under the user's row, that the hash is still the one matched
     * (checked-password.ts, assertStillProven).
     */
    async assertCurrentPassword (caller: CredentialCaller, currentPassword: string, during: PasswordCheckPurpose): Promise<CheckedPassword> {
      return { hash: (await provenCaller(caller, currentPassword, during)).passwordHash }
    },

    /**
     * Needs the current password (a stolen access token alone cannot lock the owner out).
     * The new one meets the registration policy and is hashed off the event loop. Every
     * other session ends, and what the old password began dies (accounts/unfinished-changes.ts), in
     * one transaction; the calling session stays. The owner is told by mail.
     *
     * The hash is replaced only if it is still the one the current password was checked
     * against, and the session is read again under that row's lock: a reset, another change
     * or a revocation committed during the hashing wins (403 INVALID_CURRENT_PASSWORD, 401
     * AUTH_SESSION_REVOKED) rather than being overwritten.
     */
    async changePassword (caller: CredentialCaller, currentPassword: string, newPassword: string): Promise<void> {
      const { userId, sessionId, ip } = caller
      const user = await provenCaller(caller, currentPassword, 'password_change')
      passwords.checkNew(newPassword, [user.email, user.username])
      const passwordHash = await passwords.hash(newPassword)
      await prisma.$transaction(async tx => {
        if (!await replacePasswordHash(tx, userId, user.passwordHash, passwordHash)) {
          // An account deleted meanwhile has no hash to replace, nor sessions: that is a
          // revocation, not a wrong password (regression: 403 INVALID_CURRENT_PASSWORD).
          throw apiError(await userById(tx, userId, { id: true }) === null ? 'AUTH_SESSION_REVOKED' : 'INVALID_CURRENT_PASSWORD')
        }
        // Live, and beside a factor one proven (the freshness was checked before this row's lock).
        await assertFactorProvenBeside(tx, userId, sessionId, now())
        await sessions.revokeOthers(userId, sessionId, 'password_change', tx)
        await voidUnfinishedChanges(tx, oneTimeTokens, userId, now())
        // Even the passkey this session proved: an intruder who had the session a moment may have registered it.
        await suspendPasswordless(tx, userId)
        // The address as of this row's lock (regression: as read before the transaction, so an
        // address change confirmed meanwhile had the notice sent to the address the account left).
        await outbox.queue(tx, { kind: 'password_changed', to: await emailOf(tx, userId), everywhere: false })
        await audit.recordIn(tx, { action: 'password.changed', actorId: userId, subjectId: userId, ip })
      })
      outbox.wake()
    },

    /**
     * Needs the current password. One DELETE: the schema's ON DELETE CASCADE removes the
     * profile, every session and every one-time token in the same transaction, so nothing
     * of the account survives and its refresh tokens die with it. Only while the hash is
     * the one the password was checked against: an account reset meanwhile stays. Never the
     * last active admin (409 LAST_ADMIN), as through the admin API: the service would be
     * left without one, and ADMIN_EMAIL's start-up bootstrap would promote whoever registers
     * the freed address next.
     */
    async deleteAccount (caller: CredentialCaller, password: string): Promise<void> {
      const { userId, sessionId, ip } = caller
      const user = await provenCaller(caller, password, 'account_deletion')
      await prisma.$transaction(async tx => {
        await assertDeletionLeavesAnAdmin(tx, userId)
        await lockUser(tx, userId)
        // Beside a factor, one this session proved (the freshness was checked before this row's lock).
        await assertFactorProvenBeside(tx, userId, sessionId, now())
        const deleted = await deleteUser(tx, userId, user.passwordHash)
        if (deleted === null) throw apiError('AUTH_SESSION_REVOKED')
        // Whoever registers the address or the name next starts with no failures of this account's:
        // those deleted (regression: those read before the transaction, so an address change
        // confirmed meanwhile left the new one's failure counts, as in the admin's deletion).
        await throttle.clear(throttle.keys.everyKeyOf({ id: userId, ...deleted }), tx)
        await queueDeletionNotice(tx, outbox, deleted, false)
        await audit.recordIn(tx, { action: 'user.deleted', actorId: userId, subjectId: userId, ip, details: { by: 'self' } })
      })
      outbox.wake()
    }
  }
}

export type CredentialService = ReturnType<typeof createCredentialService>
