// What counts as an account's second factor (a confirmed authenticator app or a passkey), and the
// recovery codes, which belong to the factors as a whole: made while there is one, gone with the
// last. Every query of RecoveryCode is here.
import type { Db, Transaction } from '../../db/prisma.js'
import { countFactorsGone, factorCountsOf } from '../accounts/user-store.js'
import { findRecoveryCode, hashRecoveryCode } from './recovery-codes.js'

export interface SecondFactors {
  /** A confirmed authenticator app. */
  totp: boolean
  passkey: boolean
  /** Unused recovery codes. */
  recoveryCodes: boolean
}

/** The user's second factors, in one statement; none for an unknown user. */
export async function secondFactorsOf (db: Db, userId: string): Promise<SecondFactors> {
  const user = await factorCountsOf(db, userId)
  const totp = user?.totpFactor?.confirmedAt != null
  const passkey = (user?._count.passkeys ?? 0) > 0
  // Codes outlive no factor (dropRecoveryCodesWithoutFactor); checked here all the same.
  return { totp, passkey, recoveryCodes: (totp || passkey) && (user?._count.recoveryCodes ?? 0) > 0 }
}

export const hasSecondFactor = ({ totp, passkey }: SecondFactors): boolean => totp || passkey

/** The user's recovery codes become `codes` (stored hashed), made `at` on the service's clock, as the audit trail's times are: every earlier one dies. */
export async function replaceRecoveryCodes (tx: Transaction, userId: string, codes: string[], at: Date): Promise<void> {
  await tx.recoveryCode.deleteMany({ where: { userId } })
  await tx.recoveryCode.createMany({ data: codes.map(code => ({ userId, codeHash: hashRecoveryCode(code), createdAt: at })) })
}

/**
 * Uses up the unused code `code` matches (every stored hash compared), in a conditional update:
 * of two requests with one code exactly one gets it. How many were unused before, or null when
 * none matched.
 */
export async function spendRecoveryCode (db: Db, userId: string, code: string, at: Date): Promise<{ unusedBefore: number } | null> {
  const unused = await db.recoveryCode.findMany({ where: { userId, usedAt: null }, select: { id: true, codeHash: true }, orderBy: { id: 'asc' } })
  const match = unused[findRecoveryCode(unused.map(row => row.codeHash), code)]
  if (match === undefined) return null
  const { count } = await db.recoveryCode.updateMany({ where: { id: match.id, usedAt: null }, data: { usedAt: at } })
  return count === 0 ? null : { unusedBefore: unused.length }
}

/**
 * The user is left with no second factor: the recovery codes go, and a code proven before counts
 * for nothing after (User.secondFactorGeneration).
 */
export async function endRecoveryCodes (tx: Transaction, userId: string): Promise<void> {
  await tx.recoveryCode.deleteMany({ where: { userId } })
  await countFactorsGone(tx, userId)
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
