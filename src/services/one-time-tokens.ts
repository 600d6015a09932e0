// Single-use tokens mailed to users (email verification, email change, password reset): random, stored only as SHA-256.
import { createHash, randomBytes } from 'node:crypto'
import type { PrismaClient, Transaction } from '../db/prisma.js'
import type { TokenPurpose } from '../generated/prisma/enums.js'

export type { TokenPurpose }

export interface OneTimeTokenDeps {
  prisma: PrismaClient
  now: () => Date
  /** How long each purpose's tokens work, in seconds. */
  ttlSeconds: Record<TokenPurpose, number>
}

/** What a presented token turned out to be. Unknown, used and superseded tokens are all `invalid`. */
export type Inspection =
  | { status: 'invalid' }
  | { status: 'expired' }
  | { status: 'live', id: string, userId: string, purpose: TokenPurpose, email: string }

/**
 * 256 bits from the CSPRNG (OWASP Forgot Password Cheat Sheet: long, random, single use),
 * base64url so that it travels in a link unchanged.
 */
export function newTokenValue (): string {
  return randomBytes(32).toString('base64url')
}

// A fast hash is enough here, unlike for passwords: with 256 random bits there is nothing to
// guess, so a copy of the database yields no usable token.
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function createOneTimeTokenService ({ prisma, now, ttlSeconds }: OneTimeTokenDeps) {
  async function issueIn (tx: Transaction, userId: string, purpose: TokenPurpose, email: string): Promise<string> {
    // The user's row lock serialises concurrent issues, so only one token of a purpose is ever live.
    await tx.$queryRaw`SELECT 1 FROM "User" WHERE id = ${userId}::uuid FOR UPDATE`
    const at = now()
    // Dead tokens are deleted and the live ones killed: at most two rows per user and purpose
    // remain, however often a link is asked for.
    await tx.oneTimeToken.deleteMany({ where: { userId, purpose, OR: [{ usedAt: { not: null } }, { expiresAt: { lte: at } }] } })
    await tx.oneTimeToken.updateMany({ where: { userId, purpose, usedAt: null }, data: { usedAt: at } })
    const token = newTokenValue()
    await tx.oneTimeToken.create({
      data: { userId, purpose, email, tokenHash: hashToken(token), createdAt: at, expiresAt: new Date(at.getTime() + ttlSeconds[purpose] * 1000) }
    })
    return token
  }

  return {
    /**
     * Issues a token of `purpose` for `email` and returns its value (to be mailed; only its
     * hash is stored). Every earlier token of the user for that purpose dies: only the newest
     * link works.
     */
    async issue (userId: string, purpose: TokenPurpose, email: string, tx?: Transaction): Promise<string> {
      return tx === undefined
        ? prisma.$transaction(inner => issueIn(inner, userId, purpose, email))
        : issueIn(tx, userId, purpose, email)
    },

    /**
     * Looks a presented token up by its hash. A token of another purpose is `invalid`, so a
     * verification link can never reset a password. The lookup is by hash: its timing says
     * nothing about any stored token's value.
     */
    async inspect (token: string, purposes: readonly TokenPurpose[]): Promise<Inspection> {
      const row = await prisma.oneTimeToken.findUnique({
        where: { tokenHash: hashToken(token) },
        select: { id: true, userId: true, purpose: true, email: true, usedAt: true, expiresAt: true }
      })
      if (row === null || !purposes.includes(row.purpose) || row.usedAt !== null) return { status: 'invalid' }
      if (row.expiresAt <= now()) return { status: 'expired' }
      return { status: 'live', id: row.id, userId: row.userId, purpose: row.purpose, email: row.email }
    },

    /**
     * Spends a token with one conditional update (`usedAt IS NULL AND expiresAt > now`): of
     * concurrent callers exactly one gets true, so a token is consumed once at most.
     */
    async consume (tx: Transaction, id: string): Promise<boolean> {
      const at = now()
      const { count } = await tx.oneTimeToken.updateMany({ where: { id, usedAt: null, expiresAt: { gt: at } }, data: { usedAt: at } })
      return count === 1
    },

    /** Kills the user's unused tokens of `purpose` (a password change kills outstanding reset links). */
    async revoke (tx: Transaction, userId: string, purpose: TokenPurpose): Promise<void> {
      await tx.oneTimeToken.updateMany({ where: { userId, purpose, usedAt: null }, data: { usedAt: now() } })
    }
  }
}

export type OneTimeTokenService = ReturnType<typeof createOneTimeTokenService>
