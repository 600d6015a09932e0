// Which of a session's proofs still stand for a factor the user has: what the admin rule and fresh authentication count.
import type { Db, Transaction } from '../../db/prisma.js'
import { apiError, reauthenticationRequired } from '../../errors.js'
import { liveSessionOf } from '../sessions/session-store.js'
import { hasSecondFactor, secondFactorsOf, type SecondFactors } from './second-factors.js'

/** What a session's proofs are read with: the proofs, and the user's factors now. */
const proofsAndFactors = {
  authTime: true,
  freshTokenId: true,
  totpProvenAt: true,
  totpProvenEnrolmentId: true,
  recoveryCodeProvenAt: true,
  recoveryCodeGeneration: true,
  passkeyProvenAt: true,
  passkeyProvenId: true,
  user: { select: { role: true, secondFactorGeneration: true, totpFactor: { select: { confirmedAt: true, enrolmentId: true } }, passkeys: { select: { id: true } } } }
} as const

/** When the session last proved each factor the user still has; null for one it never proved, or whose factor is gone. */
export interface HeldProofs {
  /** The session's latest authentication (a login or a reauthentication). */
  authTime: Date
  /** The `jti` of the access token that authentication answered (see assertFresh). */
  freshTokenId: string | null
  role: string
  /** Whether the user has a second factor now: an app set up, or a passkey. */
  hasFactor: boolean
  totp: Date | null
  passkey: Date | null
  recoveryCode: Date | null
}

/**
 * The live session's proofs, each counted only for the very factor it proved (identities, not
 * times: a clock set back cannot make a proof of a removed factor stand for the next): an app
 * by its enrolment, a passkey by its id, a recovery code while the user was never left without
 * a factor since (the codes stand for the factors they came with). Null when the session or
 * its user is gone.
 */
export async function heldProofsOf (db: Db, userId: string, sessionId: string, at: Date): Promise<HeldProofs | null> {
  const session = await liveSessionOf(db, userId, sessionId, at, proofsAndFactors)
  // Prisma reads the user in a query of its own: a deletion in between leaves none (regression: a 500).
  if (session?.user == null) return null
  const { role, secondFactorGeneration, totpFactor, passkeys } = session.user
  const hasApp = totpFactor?.confirmedAt != null
  const hasFactor = hasApp || passkeys.length > 0
  return {
    authTime: session.authTime,
    freshTokenId: session.freshTokenId,
    role,
    hasFactor,
    totp: hasApp && session.totpProvenEnrolmentId === totpFactor?.enrolmentId ? session.totpProvenAt : null,
    passkey: passkeys.some(passkey => passkey.id === session.passkeyProvenId) ? session.passkeyProvenAt : null,
    recoveryCode: hasFactor && session.recoveryCodeGeneration === secondFactorGeneration ? session.recoveryCodeProvenAt : null
  }
}

/** Whether the session proved a factor the user still has at or after its latest authentication (at it, or by setting the factor up since). */
export function provedFactorSince ({ authTime, totp, passkey, recoveryCode }: HeldProofs): boolean {
  return [totp, passkey, recoveryCode].some(at => at !== null && at >= authTime)
}

/**
 * The methods a user can reauthenticate with: their second factors when they have them, else
 * their password. Not the password beside a factor: whoever holds a session and has learnt the
 * password (the case a second factor is for) could otherwise change the address, the factors or
 * the recovery codes, and take the account.
 */
export function reauthenticationMethods (factors: SecondFactors): Array<'password' | 'totp' | 'recovery_code' | 'webauthn'> {
  if (!hasSecondFactor(factors)) return ['password']
  return [...(factors.totp ? ['totp'] as const : []), ...(factors.recoveryCodes ? ['recovery_code'] as const : []), ...(factors.passkey ? ['webauthn'] as const : [])]
}

/**
 * Under the user's row, in the transaction that sets up a factor on this session: when the user
 * has one already, the session must have proven one since its latest authentication (403
 * REAUTHENTICATION_REQUIRED with the methods). The route's freshness check ran before the
 * transaction, and a first factor another session set up in between would otherwise be passed
 * by (regression: on two instances, a session that knew only the password set up an app of its
 * own just after the owner's first passkey).
 */
export async function assertFactorProvenBeside (tx: Transaction, userId: string, sessionId: string, at: Date): Promise<void> {
  const proofs = await heldProofsOf(tx, userId, sessionId, at)
  if (proofs === null) throw apiError('AUTH_SESSION_REVOKED')
  if (proofs.hasFactor && !provedFactorSince(proofs)) throw reauthenticationRequired(reauthenticationMethods(await secondFactorsOf(tx, userId)))
}
