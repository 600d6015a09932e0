// The login's second step: a challenge issued once the password is proven, met by one code.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { PrismaClient } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import type { AuditService } from '../admin/audit.js'
import type { LoginProof } from '../sessions/login-store.js'
import { accountThrottleKeys, type LoginThrottle } from '../sessions/login-throttle.js'
import type { MailOutbox } from '../mail/outbox.js'
import type { FactorService } from './factors.js'

/** DESIGN 10: a challenge lives five minutes and takes at most five wrong codes. */
export const CHALLENGE_TTL_SECONDS = 300
export const CHALLENGE_MAX_FAILURES = 5

/** What a second step can be proven with; webauthn joins this list when passkeys do. */
export type SecondFactorMethod = 'totp' | 'recovery_code'

/** One proof of the second factor, as presented. */
export type SecondFactorProof = { code: string } | { recoveryCode: string }

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
  isActive: boolean
}

export function createChallengeService ({ prisma, factors, throttle, audit, outbox, now }: ChallengeDeps) {
  return {
    /**
     * Only after the password is proven. The token is 256 random bits, kept only as a
     * SHA-256; it opens no session by itself.
     */
    async issue (userId: string, throttleKey: string, ip: string): Promise<IssuedChallenge> {
      const at = now()
      const mfaToken = randomBytes(32).toString('base64url')
      // Expired challenges of anyone are swept here (indexed by expiry): no table grows without bound.
      await prisma.mfaChallenge.deleteMany({ where: { expiresAt: { lt: at } } })
      await prisma.mfaChallenge.create({
        data: { id: randomUUID(), userId, tokenHash: hashOf(mfaToken), throttleKey, expiresAt: new Date(at.getTime() + CHALLENGE_TTL_SECONDS * 1000), createdAt: at }
      })
      await audit.record({ action: 'mfa.challenge_issued', actorId: userId, subjectId: userId, ip })
      return { mfaToken, methods: ['totp', 'recovery_code'], expiresIn: CHALLENGE_TTL_SECONDS }
    },

    /**
     * Meets a challenge with one proof. The challenge row is locked for the whole check, so
     * of concurrent attempts exactly one can succeed and every wrong one is counted. A wrong
     * code counts against the challenge (dead after five) and against the identifier's
     * backoff, whose wait applies here as at login (the same 429).
     */
    async meet (mfaToken: string, proof: SecondFactorProof, ip: string): Promise<MetChallenge> {
      const at = now()
      const tokenHash = hashOf(mfaToken)
      const isDead = (row: Pick<ChallengeRow, 'usedAt' | 'expiresAt' | 'failures'>) => row.usedAt !== null || row.expiresAt <= at || row.failures >= CHALLENGE_MAX_FAILURES
      // Read before the transaction (whose lock is then the only thing held while proving): a
      // dead challenge says so whatever the wait, and the wait applies before any code is checked.
      const found = await prisma.mfaChallenge.findUnique({
        where: { tokenHash },
        select: { throttleKey: true, usedAt: true, expiresAt: true, failures: true, user: { select: { email: true, username: true } } }
      })
      if (found === null || isDead(found)) throw apiError('MFA_CHALLENGE_EXPIRED')
      const throttleKeys = [found.throttleKey, ...accountThrottleKeys(found.user)]
      await throttle.assertMayTryAll(throttleKeys)
      const method: SecondFactorMethod = 'code' in proof ? 'totp' : 'recovery_code'
      const outcome = await prisma.$transaction(async tx => {
        const [row] = await tx.$queryRaw<ChallengeRow[]>`
          SELECT c.id, c."userId", c."throttleKey", c.failures, c."expiresAt", c."usedAt", u."isActive"
          FROM "MfaChallenge" c JOIN "User" u ON u.id = c."userId"
          WHERE c."tokenHash" = ${tokenHash} FOR UPDATE OF c`
        if (row === undefined || !row.isActive || isDead(row)) throw apiError('MFA_CHALLENGE_EXPIRED')
        const proven = 'code' in proof
          ? await factors.proveTotp(tx, row.userId, proof.code)
          : await factors.proveRecoveryCode(tx, row.userId, proof.recoveryCode)
        await tx.mfaChallenge.update({ where: { id: row.id }, data: proven ? { usedAt: at } : { failures: { increment: 1 } } })
        return { row, proven }
      })
      const { row, proven } = outcome
      if (!proven) {
        await throttle.recordFailure(row.throttleKey)
        await audit.record({ action: 'mfa.code_failed', subjectId: row.userId, ip, details: { during: 'login', method, failures: row.failures + 1 } })
        throw apiError('MFA_CODE_INVALID')
      }
      if (method === 'recovery_code') {
        outbox.wake()
        await audit.record({ action: 'mfa.recovery_code_used', actorId: row.userId, subjectId: row.userId, ip, details: { during: 'login' } })
      }
      return { userId: row.userId, throttleKeys, proof: { secondFactor: method } }
    }
  }
}

export type ChallengeService = ReturnType<typeof createChallengeService>
