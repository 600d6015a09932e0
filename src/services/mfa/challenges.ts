// The login's second step: a challenge issued once the password is proven, met by one code.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { apiError, mfaNotEnabled, type ErrorCode } from '../../errors.js'
import { iso } from '../../db/sql.js'
import { lockUser } from '../accounts/user-store.js'
import type { AuditService } from '../admin/audit.js'
import type { LoginProof } from '../sessions/login-records.js'
import type { LoginThrottle } from '../sessions/login-throttle.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { AssertionVerifier } from '../passkeys/assertions.js'
import type { PasskeyService } from '../passkeys/passkeys.js'
import type { FactorService } from './factors.js'
import { secondFactorAttempt, type SecondFactorMethod } from './throttled-attempts.js'
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'

/** A challenge lives five minutes and takes at most five wrong codes (docs/second-factor.md, Second factor). */
const CHALLENGE_TTL_SECONDS = 300
const CHALLENGE_MAX_FAILURES = 5

/** Which factor a second step proved, as the session records it (see assertAdminSession). */
type ProvenFactor = Pick<LoginProof, 'totpEnrolmentId' | 'recoveryCodeGeneration' | 'passkeyId'>

/** One proof of the second factor, as presented. */
export type SecondFactorProof = { code: string } | { recoveryCode: string } | { webauthn: AuthenticationResponseJSON }

/** The account as the password step read it: the challenge is issued only while it is still so. */
export interface AccountAsRead {
  passwordHash: string
  signOutGeneration: number
}

export interface IssuedChallenge {
  mfaToken: string
  methods: SecondFactorMethod[]
  expiresIn: number
}

/** A challenge met: whose login it completes, which identifiers to clear, and how it was proven. */
export interface MetChallenge {
  userId: string
  throttleKeys: string[]
  proof: LoginProof
}

export interface ChallengeDeps {
  prisma: PrismaClient
  factors: FactorService
  passkeys: PasskeyService
  assertions: AssertionVerifier
  throttle: LoginThrottle
  audit: AuditService
  outbox: MailOutbox
  now: () => Date
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('base64url')

interface ChallengeRow {
  id: string
  userId: string
  throttleKey: string
  failures: number
  expiresAt: Date
  usedAt: Date | null
  sessionId: string | null
  proof: MetProof | null
  isActive: boolean
}

/** How a met challenge was proven, kept on it until its session opens (MfaChallenge.proof). */
type MetProof = { method: SecondFactorMethod, userVerified: boolean } & ProvenFactor

/** A challenge that can no longer be met: used, expired, or refused five codes. */
function isDead (row: Pick<ChallengeRow, 'usedAt' | 'expiresAt' | 'failures'>, at: Date): boolean {
  return row.usedAt !== null || row.expiresAt <= at || row.failures >= CHALLENGE_MAX_FAILURES
}

/**
 * Met, and not expired: its session may not have opened (a 503 between the proof's commit and
 * the session's statement), which checkLocked reads under the challenge's lock.
 */
function mayResume (row: Pick<ChallengeRow, 'usedAt' | 'expiresAt' | 'sessionId'>, at: Date): boolean {
  return row.usedAt !== null && row.sessionId !== null && row.expiresAt > at
}

/** The method a proof uses, as audited and as the login records it. */
function methodOf (proof: SecondFactorProof): SecondFactorMethod {
  return 'code' in proof ? 'totp' : 'recoveryCode' in proof ? 'recovery_code' : 'webauthn'
}

/** The methods this user's factors allow: a TOTP code, a recovery code while one is unused, and a passkey. */
async function methodsOf ({ factors }: ChallengeDeps, userId: string): Promise<SecondFactorMethod[]> {
  const { totp, recoveryCodes, passkey } = await factors.secondFactors(userId)
  return [...(totp ? ['totp'] as const : []), ...(recoveryCodes ? ['recovery_code'] as const : []), ...(passkey ? ['webauthn'] as const : [])]
}

/** When a voided challenge expired: before any moment a request in flight may have taken as its own. */
const VOIDED = new Date(0)

/**
 * Voids the user's challenges that could still be met at `at`, or met again (see mayResume): a
 * password change or reset ends the logins the old password began, as it ends their sessions.
 * Voided, they expire (whoever presents one is answered as for an expired one) and are left to
 * the sweep, which tells the owner of those never met (regression: a sign-out everywhere
 * deleted an intruder's challenge, and nobody was told that the password was known).
 */
export async function voidPendingChallenges (db: Db, userId: string, at: Date): Promise<void> {
  await db.mfaChallenge.updateMany({ where: { userId, expiresAt: { gt: at } }, data: { expiresAt: VOIDED } })
}

/**
 * The challenge, only while the user is active, still has the hash the password was proven
 * against and has not been signed out everywhere since the login read the account, taking
 * the user's row as a login does: a password change, reset, deactivation or other remedy
 * committed during the hashing wins (no challenge; regression: a remedy's was not seen, and
 * the challenge it had not voided opened a session after it), and one committed later finds
 * the challenge and voids it (voidPendingChallenges). False when nothing was inserted.
 */
async function insertChallenge (db: Db, { id, userId, account, tokenHash, throttleKey, at }: { id: string, userId: string, account: AccountAsRead, tokenHash: string, throttleKey: string, at: Date }): Promise<boolean> {
  const expiresAt = new Date(at.getTime() + CHALLENGE_TTL_SECONDS * 1000)
  const inserted = await db.$executeRaw`
    INSERT INTO "MfaChallenge" (id, "userId", "tokenHash", "throttleKey", "expiresAt", "createdAt")
    SELECT ${id}::uuid, u.id, ${tokenHash}, ${throttleKey}, ${iso(expiresAt)}::timestamp(3), ${iso(at)}::timestamp(3)
    FROM (
      SELECT id FROM "User"
      WHERE id = ${userId}::uuid AND "isActive" AND "passwordHash" = ${account.passwordHash} AND "signOutGeneration" = ${account.signOutGeneration}
      FOR NO KEY UPDATE
    ) u`
  return inserted === 1
}

/** A challenge swept: whose it was, whether it was met, and when it began. */
export interface SweptChallenge {
  userId: string
  met: boolean
  createdAt: Date
}

/**
 * Deletes up to `limit` of everyone's challenges expired at `at`, the longest expired first,
 * skipping rows another transaction holds: a sweep never waits, so logins at once neither
 * queue on it nor deadlock in it.
 */
export async function sweepExpiredChallenges (db: Db, at: Date, limit: number): Promise<SweptChallenge[]> {
  return await db.$queryRaw<SweptChallenge[]>`
    DELETE FROM "MfaChallenge"
    WHERE id IN (SELECT id FROM "MfaChallenge" WHERE "expiresAt" < ${iso(at)}::timestamp(3) ORDER BY "expiresAt" LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING "userId", "usedAt" IS NOT NULL AS met, "createdAt"`
}

/**
 * The proof checked inside the challenge's lock: the refusal's code (null when it holds), whether
 * a passkey verified the user, and which app, passkey or generation of recovery codes it proved.
 */
async function checkProof ({ factors, assertions }: ChallengeDeps, tx: Transaction, row: ChallengeRow, proof: SecondFactorProof, ip: string) {
  const byCode = (proven: ProvenFactor | null) => ({ refusal: proven === null ? 'MFA_CODE_INVALID' as ErrorCode : null, userVerified: false, proven: proven ?? {}, report: async () => {} })
  if ('code' in proof) {
    const app = await factors.proveTotp(tx, row.userId, proof.code)
    return byCode(app === null ? null : { totpEnrolmentId: app.enrolmentId })
  }
  if ('recoveryCode' in proof) {
    const codes = await factors.proveRecoveryCode(tx, row.userId, proof.recoveryCode)
    return byCode(codes === null ? null : { recoveryCodeGeneration: codes.generation })
  }
  const request = { response: proof.webauthn, purpose: 'second_factor' as const, bindingId: row.id, userId: row.userId, requireUserVerification: false, ip }
  const outcome = await assertions.check(tx, request)
  const report = async () => assertions.report(request, outcome)
  return outcome.ok ? { refusal: null, userVerified: outcome.userVerified, proven: { passkeyId: outcome.passkeyId }, report } : { refusal: outcome.code, userVerified: false, proven: {}, report }
}

/**
 * The proof checked with the challenge row locked, so of concurrent attempts exactly one can
 * succeed and every wrong one is counted: the challenge is used up, keeping the proof and the
 * id of the session it opens, or takes one more failure. A challenge met whose session has not
 * opened is met again by any proof, without checking it (`resumed`): the code was spent by the
 * attempt that met it. The user's row first, as every writer of a user's rows takes it (see
 * lockUser): a deletion's cascade reaches the factors before the challenges, the crosswise
 * order of a proof's.
 */
async function checkLocked (deps: ChallengeDeps, userId: string, tokenHash: string, at: Date, proof: SecondFactorProof, ip: string) {
  return deps.prisma.$transaction(async tx => {
    await lockUser(tx, userId)
    const [row] = await tx.$queryRaw<Array<ChallengeRow & { sessionOpened: boolean }>>`
      SELECT c.id, c."userId", c."throttleKey", c.failures, c."expiresAt", c."usedAt", c."sessionId", c.proof, u."isActive",
        EXISTS (SELECT FROM "Session" s WHERE s.id = c."sessionId") AS "sessionOpened"
      FROM "MfaChallenge" c JOIN "User" u ON u.id = c."userId"
      WHERE c."tokenHash" = ${tokenHash} FOR UPDATE OF c`
    if (row?.isActive === true && row.proof !== null && mayResume(row, at) && !row.sessionOpened) {
      const { method, userVerified, ...proven } = row.proof
      return { row, resumed: true, method, refusal: null, userVerified, proven, report: async () => {} }
    }
    if (row === undefined || !row.isActive || isDead(row, at)) throw apiError('MFA_CHALLENGE_EXPIRED')
    const checked = await checkProof(deps, tx, row, proof, ip)
    const method = methodOf(proof)
    if (checked.refusal !== null) {
      await tx.mfaChallenge.update({ where: { id: row.id }, data: { failures: { increment: 1 } } })
      return { row, resumed: false, method, ...checked }
    }
    const met = { sessionId: randomUUID(), proof: { method, userVerified: checked.userVerified, ...checked.proven } }
    await tx.mfaChallenge.update({ where: { id: row.id }, data: { usedAt: at, ...met } })
    // With the code it records: a resumed step writes neither again.
    if (method === 'recovery_code') await deps.audit.recordIn(tx, { action: 'mfa.recovery_code_used', actorId: row.userId, subjectId: row.userId, ip, details: { during: 'login' } })
    return { row: { ...row, ...met }, resumed: false, method, ...checked }
  })
}

export function createChallengeService (deps: ChallengeDeps) {
  const { prisma, passkeys, throttle, audit, outbox, now } = deps
  return {
    /**
     * Only after the password is proven. The token is 256 random bits, kept only as a
     * SHA-256; it opens no session by itself. Null when the account changed while the
     * password was being checked (see insertChallenge): nothing is issued.
     */
    async issue (userId: string, account: AccountAsRead, throttleKey: string, ip: string): Promise<IssuedChallenge | null> {
      const at = now()
      const mfaToken = randomBytes(32).toString('base64url')
      if (!await insertChallenge(prisma, { id: randomUUID(), userId, account, tokenHash: hashOf(mfaToken), throttleKey, at })) return null
      await audit.record({ action: 'mfa.challenge_issued', actorId: userId, subjectId: userId, ip })
      return { mfaToken, methods: await methodsOf(deps, userId), expiresIn: CHALLENGE_TTL_SECONDS }
    },

    /**
     * Passkey options for the second step: the user's passkeys, a challenge bound to this
     * login's challenge (usable only with its mfaToken). 401 MFA_CHALLENGE_EXPIRED for a dead one.
     */
    async webauthnOptions (mfaToken: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const found = await prisma.mfaChallenge.findUnique({ where: { tokenHash: hashOf(mfaToken) }, select: { id: true, userId: true, usedAt: true, expiresAt: true, failures: true } })
      if (found === null || isDead(found, now())) throw apiError('MFA_CHALLENGE_EXPIRED')
      if (!await passkeys.has(found.userId)) throw mfaNotEnabled('passkey')
      return passkeys.secondFactorOptions(found.id, found.userId)
    },

    /**
     * Meets a challenge with one proof (checked under the challenge's lock: see checkLocked).
     * A wrong code counts against the challenge (dead after five), the identifier's backoff and
     * the account's second factor (see secondFactorAttempt), whose waits apply here as at login
     * (the same 429).
     */
    async meet (mfaToken: string, proof: SecondFactorProof, ip: string): Promise<MetChallenge> {
      const at = now()
      const tokenHash = hashOf(mfaToken)
      // Read before the transaction (whose lock is then the only thing held while proving): a
      // dead challenge says so whatever the wait, and the wait applies before any code is checked.
      // The password hash and the sign-out count too, before the transaction waits for the
      // user's row: the session opens only while they are still those (see session-store.ts),
      // so a new password or a remedy committed meanwhile wins, even over a challenge it did
      // not void, or one met just before it.
      const found = await prisma.mfaChallenge.findUnique({
        where: { tokenHash },
        select: { userId: true, throttleKey: true, usedAt: true, expiresAt: true, failures: true, sessionId: true, user: { select: { email: true, username: true, passwordHash: true, signOutGeneration: true } } }
      })
      if (found === null || (isDead(found, at) && !mayResume(found, at))) throw apiError('MFA_CHALLENGE_EXPIRED')
      // Wrong codes count under the identifier, as wrong passwords do, and under the account's
      // second-factor key, which a password reset does not clear (regression: whoever held the
      // mailbox got a fresh budget of codes with each reset, 36 times the lockout's in a day).
      // In turn with the identifier's other checks, then with the account's other proofs, at a
      // second step or a reauthentication (see secondFactorAttempt): codes sent at once to several
      // challenges, begun by one identifier or by both, would otherwise all read the same count.
      const throttleKeys = [found.throttleKey, ...throttle.keys.account(found.user), throttle.keys.secondFactor(found.userId)]
      const { refusal, ...checked } = await secondFactorAttempt(throttle, found.throttleKey, { id: found.userId, email: found.user.email, username: found.user.username }, methodOf(proof), async () => {
        const { report, ...checked } = await checkLocked(deps, found.userId, tokenHash, at, proof, ip)
        await report()
        return checked
      })
      if (refusal !== null) {
        await audit.record({ action: 'mfa.code_failed', subjectId: checked.row.userId, ip, details: { during: 'login', method: checked.method, failures: checked.row.failures + 1 } })
        throw apiError(refusal)
      }
      const { row, resumed, method, userVerified, proven } = checked
      if (method === 'recovery_code' && !resumed) outbox.wake()
      const account = { passwordHash: found.user.passwordHash, signOutGeneration: found.user.signOutGeneration }
      return { userId: row.userId, throttleKeys, proof: { secondFactor: method, userVerified, sessionId: row.sessionId ?? undefined, ...account, ...proven } }
    }
  }
}

export type ChallengeService = ReturnType<typeof createChallengeService>
