// What a new password ends besides the sessions: whatever someone holding the old one had begun.
import type { Transaction } from '../../db/prisma.js'
import { cancelEmailChange } from '../accounts/user-store.js'
import { voidPendingChallenges } from '../mfa/challenges.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'

/**
 * Inside the transaction that replaces the hash (a change or a reset): the login challenges
 * the old password opened, the reset links, and a staged email change with its link. The
 * change's notice tells the owner to change the password if it was not them; an intruder's
 * link must not outlive that remedy and hand them the address, and with it the next reset.
 */
export async function voidWhatTheOldPasswordBegan (tx: Transaction, oneTimeTokens: Pick<OneTimeTokenService, 'revoke'>, userId: string, at: Date): Promise<void> {
  await voidPendingChallenges(tx, userId, at)
  await oneTimeTokens.revoke(tx, userId, 'password_reset')
  await oneTimeTokens.revoke(tx, userId, 'email_change')
  await cancelEmailChange(tx, userId)
}
