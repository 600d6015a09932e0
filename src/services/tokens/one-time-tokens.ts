// Single-use tokens mailed to users (email verification, email change, password reset): derived from a server key, stored only as SHA-256.
import { createHash, createHmac, randomUUID } from 'node:crypto'
import type { Db, PrismaClient, Transaction } from '../../db/prisma.js'
import { iso } from '../../db/sql.js'
import type { TokenPurpose } from '../../generated/prisma/enums.js'
import { lockUser } from '../accounts/user-store.js'

export type { TokenPurpose }

export interface OneTimeTokenDeps {
  prisma: PrismaClient
  now: () => Date
  /** How long each purpose's tokens work, in seconds. */
  ttlSeconds: Record<TokenPurpose, number>
  /** The server key tokens are derived from (never in the database). */
  key: Buffer
}

/** A token's row, ready to be written (alone, or nested in the account's creation). */
export interface NewTokenRow {
  id: string
  purpose: TokenPurpose
  email: string
  tokenHash: string
  createdAt: Date
  expiresAt: Date
}

/** What a presented token turned out to be. Unknown, used and superseded tokens are all `invalid`. */
export type Inspection =
  | { status: 'invalid' }
  | { status: 'expired' }
  | { status: 'live', id: string, userId: string, purpose: TokenPurpose, email: string, sessionId: string | null }

/**
 * The token of row `id`: an HMAC-SHA256 under a server key, 256 bits in base64url (OWASP
 * Forgot Password Cheat Sheet: long, unguessable, single use). The row's id is random and
 * the key is not in the database, so neither a copy of the database nor the outbox of
 * mails waiting to be sent yields a usable token; the mail is rendered from the id.
 */
function tokenValueOf (key: Buffer, id: string): string {
  return createHmac('sha256', key).update(id).digest('base64url')
}

// A fast hash is enough here, unlike for passwords: with 256 random bits there is nothing to
// guess, so a copy of the database yields no usable token.
function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Whether a row's token was derived under `key`: one of a replaced AUTH_SECRET is not. */
function derivedUnder (key: Buffer, row: { id: string, tokenHash: string }): boolean {
  return hashToken(tokenValueOf(key, row.id)) === row.tokenHash
}

export function createOneTimeTokenService ({ prisma, now, ttlSeconds, key }: OneTimeTokenDeps) {
  function newRow (purpose: TokenPurpose, email: string): NewTokenRow {
    const id = randomUUID()
    const createdAt = now()
    return { id, purpose, email, tokenHash: hashToken(tokenValueOf(key, id)), createdAt, expiresAt: new Date(createdAt.getTime() + ttlSeconds[purpose] * 1000) }
  }

  async function issueIn (tx: Transaction, userId: string, purpose: TokenPurpose, email: string, sessionId: string | null): Promise<string> {
    // The user's row lock serialises concurrent issues, so only one token of a purpose is ever live.
    await lockUser(tx, userId)
    const at = now()
    // Dead tokens are deleted and the live ones killed: at most two rows per user and purpose
    // remain, however often a link is asked for.
    await tx.oneTimeToken.deleteMany({ where: { userId, purpose, OR: [{ usedAt: { not: null } }, { expiresAt: { lte: at } }] } })
    await tx.oneTimeToken.updateMany({ where: { userId, purpose, usedAt: null }, data: { usedAt: at } })
    const row = newRow(purpose, email)
    await tx.oneTimeToken.create({ data: { ...row, userId, sessionId } })
    return row.id
  }

  return {
    /** A first token for an account being created, to nest in its creation: nothing to kill yet. */
    newRow,

    /** The value of the token of row `id`: what the mail carries. */
    valueOf: (id: string) => tokenValueOf(key, id),

    /**
     * Whether the token of a row was derived under the current key: a link of a replaced
     * AUTH_SECRET no longer works, so a mail still carrying one is not worth sending.
     */
    derivedUnderKey: (row: { id: string, tokenHash: string }) => derivedUnder(key, row),

    /**
     * Issues a token of `purpose` for `email` and returns its row's id (the mail derives the
     * value; only its hash is stored). Every earlier token of the user for that purpose
     * dies: only the newest link works, and the dead ones are deleted, with any mail of
     * theirs still waiting to be sent. `sessionId`: the session an email change's link is for.
     */
    async issue (userId: string, purpose: TokenPurpose, email: string, tx?: Transaction, sessionId: string | null = null): Promise<string> {
      return tx === undefined
        ? prisma.$transaction(inner => issueIn(inner, userId, purpose, email, sessionId))
        : issueIn(tx, userId, purpose, email, sessionId)
    },

    /**
     * Looks a presented token up by its hash. A token of another purpose is `invalid`, so a
     * verification link can never reset a password. The lookup is by hash: its timing says
     * nothing about any stored token's value. A token derived under another key is `invalid`
     * too: replacing AUTH_SECRET voids the links already mailed, which whoever had the old
     * secret and a copy of the database could derive (regression: they kept working).
     */
    async inspect (token: string, purposes: readonly TokenPurpose[]): Promise<Inspection> {
      const row = await prisma.oneTimeToken.findUnique({
        where: { tokenHash: hashToken(token) },
        select: { id: true, tokenHash: true, userId: true, purpose: true, email: true, usedAt: true, expiresAt: true, sessionId: true }
      })
      if (row === null || !purposes.includes(row.purpose) || row.usedAt !== null || !derivedUnder(key, row)) return { status: 'invalid' }
      if (row.expiresAt <= now()) return { status: 'expired' }
      return { status: 'live', id: row.id, userId: row.userId, purpose: row.purpose, email: row.email, sessionId: row.sessionId }
    },

    ...spending(now, key)
  }
}

/** Spending and killing tokens, inside the caller's transaction. */
function spending (now: () => Date, key: Buffer) {
  /** The user's working link of `purpose` for `email` (see hasLiveLink), with the session it is for; null when none works. */
  async function liveLink (db: Db, userId: string, purpose: TokenPurpose, email: string, since?: Date): Promise<{ sessionId: string | null } | null> {
    const rows = await db.oneTimeToken.findMany({ where: { userId, purpose, email, usedAt: null, expiresAt: { gt: now() }, ...(since === undefined ? {} : { createdAt: { gt: since } }) }, select: { id: true, tokenHash: true, sessionId: true } })
    return rows.find(row => derivedUnder(key, row)) ?? null
  }

  return {
    /**
     * Spends a token with one conditional update (`usedAt IS NULL AND expiresAt > now`): of
     * concurrent callers exactly one gets true, so a token is consumed once at most.
     */
    async consume (tx: Transaction, id: string): Promise<boolean> {
      const at = now()
      const { count } = await tx.oneTimeToken.updateMany({ where: { id, usedAt: null, expiresAt: { gt: at } }, data: { usedAt: at } })
      return count === 1
    },

    /**
     * Whether the user has a live token of `purpose` for `email` (issued after `since`, when
     * given), under the current key: one derived under a replaced AUTH_SECRET no longer works,
     * and must not hold up a new link (regression: a login's reminder waited five minutes after
     * the rotation), nor keep a change pending.
     */
    async hasLiveLink (db: Db, userId: string, purpose: TokenPurpose, email: string, since?: Date): Promise<boolean> {
      return await liveLink(db, userId, purpose, email, since) !== null
    },

    liveLink,

    /** Kills the user's unused link of `purpose` that the session `sessionId` asked for; whether there was one. */
    async revokeAskedBy (tx: Transaction, userId: string, purpose: TokenPurpose, sessionId: string): Promise<boolean> {
      const { count } = await tx.oneTimeToken.updateMany({ where: { userId, purpose, sessionId, usedAt: null }, data: { usedAt: now() } })
      return count > 0
    },

    /** Kills the user's unused tokens of `purpose` (a password change kills outstanding reset links). */
    async revoke (tx: Transaction, userId: string, purpose: TokenPurpose): Promise<void> {
      await tx.oneTimeToken.updateMany({ where: { userId, purpose, usedAt: null }, data: { usedAt: now() } })
    }
  }
}

export type OneTimeTokenService = ReturnType<typeof createOneTimeTokenService>

/**
 * Deletes up to `batch` mailed links used, killed or expired before `cutoff` (each holds an
 * address), skipping rows in use: the retention pass's. A link presented after its row is
 * gone is refused as unknown rather than as expired.
 */
export async function deleteLinksEndedBefore (db: Db, cutoff: Date, batch: number): Promise<number> {
  return await db.$executeRaw`DELETE FROM "OneTimeToken" WHERE id IN (SELECT id FROM "OneTimeToken"
    WHERE "usedAt" < ${iso(cutoff)}::timestamp(3) OR "expiresAt" < ${iso(cutoff)}::timestamp(3)
    LIMIT ${batch} FOR UPDATE SKIP LOCKED)`
}
