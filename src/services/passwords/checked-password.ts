// The current password, once checked: the proof a new way into the account is written under.
import type { Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { liveCallerOf } from '../accounts/user-store.js'

/** The current password, checked (CredentialService.assertCurrentPassword): the hash it matched. */
export interface CheckedPassword { hash: string }

/**
 * Under the user's row lock, before a write the current password allowed (a new way in): the
 * caller's session is still live (else 401 AUTH_SESSION_REVOKED: a remedy that committed first,
 * a sign-out everywhere, a reset or a password change made on another session, ends the set-ups
 * and must not be followed by one) and the hash is still the one the password was checked
 * against (else 403 INVALID_CURRENT_PASSWORD: a password change made on this very session, which
 * it keeps; what the old password began must not start after the new one). Both regressions,
 * on two instances.
 */
export async function assertStillProven (tx: Transaction, { userId, sessionId }: { userId: string, sessionId: string }, checked: CheckedPassword, at: Date): Promise<void> {
  const user = await liveCallerOf(tx, userId, sessionId, at, { passwordHash: true })
  if (user === null) throw apiError('AUTH_SESSION_REVOKED')
  if (user.passwordHash !== checked.hash) throw apiError('INVALID_CURRENT_PASSWORD')
}
