// What counts as an account's second factor: a confirmed authenticator app or a passkey. Recovery
// codes belong to the factors as a whole: made while there is one, gone with the last.
import type { Db, Transaction } from '../../db/prisma.js'
import { deleteAllPasskeys } from '../passkeys/passkey-store.js'

export interface SecondFactors {
  /** A confirmed authenticator app. */
  totp: boolean
  passkey: boolean
  /** Unused recovery codes. */
  recoveryCodes: boolean
}

/** The user's second factors, in one statement; none for an unknown user. */
export async function secondFactorsOf (db: Db, userId: string): Promise<SecondFactors> {
  const user = await db.user.findUnique({
    where: { id: userId },
    select: { totpFactor: { select: { confirmedAt: true } }, _count: { select: { passkeys: true, recoveryCodes: { where: { usedAt: null } } } } }
  })
  const totp = user?.totpFactor?.confirmedAt != null
  const passkey = (user?._count.passkeys ?? 0) > 0
  // Codes outlive no factor (dropRecoveryCodesWithoutFactor); checked here all the same.
  return { totp, passkey, recoveryCodes: (totp || passkey) && (user?._count.recoveryCodes ?? 0) > 0 }
}

export const hasSecondFactor = ({ totp, passkey }: SecondFactors): boolean => totp || passkey

/**
 * The user is left with no second factor: the recovery codes go, and a code proven before counts
 * for nothing after (User.secondFactorGeneration). By hand, so that the user's `updatedAt` stays
 * what the API shows.
 */
async function endRecoveryCodes (tx: Transaction, userId: string): Promise<void> {
  await tx.recoveryCode.deleteMany({ where: { userId } })
  await tx.$executeRaw`UPDATE "User" SET "secondFactorGeneration" = "secondFactorGeneration" + 1 WHERE id = ${userId}::uuid`
}

/**
 * Under the user's row (see lockUser), after a factor is removed or before one is added (a
 * passkey, an app confirmed): the user's factors as they are. With none, the recovery codes end,
 * whoever left them (an older release beside this one in a rolling upgrade removes factors
 * without ending them); with one, they stay and stand in for it.
 */
export async function dropRecoveryCodesWithoutFactor (tx: Transaction, userId: string): Promise<SecondFactors> {
  const factors = await secondFactorsOf(tx, userId)
  if (!hasSecondFactor(factors)) await endRecoveryCodes(tx, userId)
  return factors
}

/** The user's secondFactorGeneration: a recovery code proven now counts while it stays so. */
export async function recoveryCodeGenerationOf (db: Db, userId: string): Promise<number | null> {
  return (await db.user.findUnique({ where: { id: userId }, select: { secondFactorGeneration: true } }))?.secondFactorGeneration ?? null
}

/**
 * Deletes the user's TOTP factor (confirmed or not), recovery codes and passkeys: whether
 * there was a factor to delete. An enrolment never confirmed is not one: it guarded nothing,
 * and its removal mails nobody that two-step sign-in is off.
 */
export async function deleteEverySecondFactor (tx: Transaction, userId: string): Promise<boolean> {
  const { count: confirmed } = await tx.totpFactor.deleteMany({ where: { userId, confirmedAt: { not: null } } })
  await tx.totpFactor.deleteMany({ where: { userId } })
  await endRecoveryCodes(tx, userId)
  const passkeys = await deleteAllPasskeys(tx, userId)
  return confirmed > 0 || passkeys > 0
}
