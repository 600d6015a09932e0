// Where a signed-in user's security mails go: their current address, read in the caller's transaction.
import type { Db } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { userById } from './user-store.js'

/** The user's email; AUTH_SESSION_REVOKED when the account is gone (deleted meanwhile). */
export async function emailOf (db: Db, userId: string): Promise<string> {
  const user = await userById(db, userId, { email: true })
  if (user === null) throw apiError('AUTH_SESSION_REVOKED')
  return user.email
}

/**
 * The user's email once its owner has proven it, else 403 EMAIL_NOT_VERIFIED. A second factor
 * is set up only on a proven address: whoever registered someone else's address first could
 * otherwise enrol a factor that outlives the owner's reset (docs/second-factor.md, Second factor).
 */
export async function provenEmailOf (db: Db, userId: string): Promise<string> {
  const user = await userById(db, userId, { email: true, emailVerifiedAt: true })
  if (user === null) throw apiError('AUTH_SESSION_REVOKED')
  if (user.emailVerifiedAt === null) throw apiError('EMAIL_NOT_VERIFIED')
  return user.email
}
