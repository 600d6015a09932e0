// The current password, once checked: the proof a new way into the account is written under.
import type { Transaction } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { userById } from '../accounts/user-store.js'

/** The current password, checked (CredentialService.assertCurrentPassword): the hash it matched. */
export interface CheckedPassword { hash: string }

/**
 * Under the user's row lock, before a write the current password allowed (a new way in): the
 * hash is still the one the password was checked against (CredentialService.assertCurrentPassword),
 * else 403 INVALID_CURRENT_PASSWORD. A password change or reset committed while the check ran
 * wins: what the old password began must not start after the new one (a review: on another
 * instance, an address staged with the old password outlived the change).
 */
export async function assertPasswordUnchanged (tx: Transaction, id: string, checked: CheckedPassword): Promise<void> {
  const user = await userById(tx, id, { passwordHash: true })
  if (user === null) throw apiError('AUTH_SESSION_REVOKED')
  if (user.passwordHash !== checked.hash) throw apiError('INVALID_CURRENT_PASSWORD')
}
