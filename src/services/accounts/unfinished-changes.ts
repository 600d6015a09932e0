// What someone holding the password or a session may have begun and not finished, ended by the owner's and the admins' remedies.
import type { Transaction } from '../../db/prisma.js'
import { cancelEmailChange } from './user-store.js'
import { voidPendingChallenges } from '../mfa/challenges.js'
import { cancelAppSetUp } from '../mfa/factors.js'
import { voidRegistrationCeremonies } from '../passkeys/ceremony-challenges.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'

/**
 * Inside the transaction of a remedy: a new password (change or reset), a sign-out of every
 * session (the owner's or an admin's), and an admin's deactivation or removal of the second
 * factors. Ends the login challenges under way, the reset links, a staged email change with its
 * link, and the set-ups of an authenticator app or a passkey under way (begun with the password
 * of then). The change's notice tells the owner to change the password if it was not them, and
 * an admin acting on a compromised account reaches for the others: an intruder's link must
 * outlive none of them and hand over the address, and with it the next reset.
 */
export async function voidUnfinishedChanges (tx: Transaction, oneTimeTokens: Pick<OneTimeTokenService, 'revoke'>, userId: string, at: Date): Promise<void> {
  await voidPendingChallenges(tx, userId, at)
  await oneTimeTokens.revoke(tx, userId, 'password_reset')
  await oneTimeTokens.revoke(tx, userId, 'email_change')
  await cancelEmailChange(tx, userId)
  await cancelAppSetUp(tx, userId)
  await voidRegistrationCeremonies(tx, userId)
}

/**
 * Inside the end of one session (a logout, or as not the owner's: from the session list, by an
 * admin, for a reused refresh token), after the user's row: the email change that session asked
 * for, with its link. A change another session asked for stays, the owner's own among them.
 */
export async function voidEmailChangeAskedBy (tx: Transaction, oneTimeTokens: Pick<OneTimeTokenService, 'revokeAskedBy'>, userId: string, sessionId: string): Promise<void> {
  if (await oneTimeTokens.revokeAskedBy(tx, userId, 'email_change', sessionId)) await cancelEmailChange(tx, userId)
}
