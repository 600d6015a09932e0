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
