// Sessions: ending, checking and listing them, by the rules of liveness.ts (their queries are in session-store.ts).
import type { PrismaClient, Transaction } from '../../db/prisma.js'
import { voidEmailChangeAskedBy, voidUnfinishedChanges } from '../accounts/unfinished-changes.js'
import { lockUser } from '../accounts/user-store.js'
import type { AdminActor } from '../admin/admin-actor.js'
import type { Actor, AuditService } from '../admin/audit.js'
import type { OneTimeTokenService } from '../tokens/one-time-tokens.js'
import { expiryOf } from './liveness.js'
import { countLiveSessions, disownSession, endSession, endSessionsOfUser, liveSessionOf, liveSessionsPage, saltOf, type DisownReason, type RevokeReason } from './session-store.js'
import type { RefreshTokenCodec } from '../tokens/refresh-tokens.js'
import { decodeCursor, encodeCursor, type Page } from '../pagination.js'

export interface SessionDeps {
  prisma: PrismaClient
  codec: RefreshTokenCodec
  oneTimeTokens: Pick<OneTimeTokenService, 'revoke' | 'revokeAskedBy'>
  audit: Pick<AuditService, 'recordIn'>
  now: () => Date
}

export interface StartedSession {
  sessionId: string
  refreshToken: string
  /** When the refresh token stops working: the earlier of the idle and absolute limits. */
  refreshExpiresAt: Date
}

export interface Device {
  userAgent: string | undefined
  ip: string
}

/** A device signing in: with its device token, the one it presented or a new one (see devices.ts). */
export interface SigningInDevice extends Device {
  token: string
}

export interface SessionView {
  id: string
  userAgent: string | null
  ip: string | null
  createdAt: string
  lastUsedAt: string
  expiresAt: string
  current: boolean
}

/**
 * Ends the session, as not the owner's (see disownSession) or by a logout, and the email change
 * it asked for with its link (regression: an intruder's session ended from the owner's list, for
 * a reused refresh token or by the intruder's own logout left the change for the intruder to
 * confirm later, and the address theirs). The user's row first, as every writer of a user's rows
 * takes it. Whether this ended it.
 */
async function endWithItsChange (tx: Transaction, oneTimeTokens: SessionDeps['oneTimeTokens'], session: { id: string, userId: string }, reason: DisownReason | 'logout', at: Date): Promise<boolean> {
  if (reason === 'logout') await lockUser(tx, session.userId)
  const ended = reason === 'logout' ? await endSession(tx, session, reason, at) : await disownSession(tx, session, reason, at)
  if (ended) await voidEmailChangeAskedBy(tx, oneTimeTokens, session.userId, session.id)
  return ended
}

export function createSessionService ({ prisma, codec, oneTimeTokens, audit, now }: SessionDeps) {
  const end = (tx: Transaction, session: { id: string, userId: string }, reason: DisownReason | 'logout') => endWithItsChange(tx, oneTimeTokens, session, reason, now())

  /**
   * Ends the session and, only if this ended it, records `action` in the same transaction:
   * a session already ended, or not the user's, ends nothing and leaves no entry. Whether it
   * ended. The owner's own end of it is a disowning (see disownSession); a logout is not.
   */
  async function endAudited (session: { id: string, userId: string }, reason: 'revoked_by_user' | 'logout', action: 'session.revoked' | 'logout.succeeded', ip: string): Promise<boolean> {
    return await prisma.$transaction(async tx => {
      const ended = await end(tx, session, reason)
      if (ended) await audit.recordIn(tx, { action, actorId: session.userId, subjectId: session.userId, ip, details: { sessionId: session.id } })
      return ended
    })
  }

  return {
    /** How many sessions can still be used, across all users (a gauge for monitoring). */
    async countLive (): Promise<number> {
      return await countLiveSessions(prisma, now())
    },

    /** True when the session exists, belongs to `userId` and can still be used. */
    async isLive (userId: string, sessionId: string): Promise<boolean> {
      return await liveSessionOf(prisma, userId, sessionId, now(), { id: true }) !== null
    },

    /** An admin ends one session of `userId`, inside the admin's transaction; false when it is not theirs, already ended or expired (no oracle). */
    async revokeByAdmin (userId: string, sessionId: string, tx: Transaction): Promise<boolean> {
      return await end(tx, { id: sessionId, userId }, 'revoked_by_admin')
    },

    /** The owner ends one of their sessions, audited as `session.revoked`; false as for `revoke`. */
    async revokeOwn (actor: Actor, sessionId: string): Promise<boolean> {
      return await endAudited({ id: sessionId, userId: actor.userId }, 'revoked_by_user', 'session.revoked', actor.ip)
    },

    /** A logout by the access token's session: `logout.succeeded` when it ended one. */
    async logOut (userId: string, sessionId: string, ip: string): Promise<void> {
      await endAudited({ id: sessionId, userId }, 'logout', 'logout.succeeded', ip)
    },

    /**
     * Ends the session a retired refresh token came back for, audited as reuse in the same
     * transaction: the remedy and its record commit together or not at all (regression: the
     * entry, written after, was lost to a stalled or dropped statement, only logged).
     */
    async endReused (session: { id: string, userId: string }, ip: string, generation: number): Promise<void> {
      await prisma.$transaction(async tx => {
        await end(tx, session, 'refresh_reuse')
        await audit.recordIn(tx, { action: 'refresh.reuse_detected', subjectId: session.userId, ip, details: { sessionId: session.id, generation } })
      })
    },

    /**
     * Signs the user out everywhere, by their own logout-all or an admin's hand: every live
     * session ends, and so does what a session may have begun and not finished (a staged
     * email change and its link, the reset links, the login challenges: see
     * accounts/unfinished-changes.ts), audited, in one transaction. It is the remedy for a
     * stolen session, and an intruder's staged address must not outlive it.
     */
    async signOutEverywhere (actor: Actor & { confirm?: AdminActor['confirm'] }, userId: string, reason: 'logout_all' | 'revoked_by_admin'): Promise<void> {
      await prisma.$transaction(async tx => {
        // An admin's sign-out: the admin still one, and the user still there (else 404).
        await actor.confirm?.(tx, { target: userId })
        const count = await endSessionsOfUser(tx, userId, reason, now())
        await voidUnfinishedChanges(tx, oneTimeTokens, userId, now())
        await audit.recordIn(tx, { action: 'sessions.revoked', actorId: actor.userId, subjectId: userId, ip: actor.ip, details: { count } })
      })
    },

    /** Ends every live session of the user, inside a remedy's transaction (password reset, deactivation, removal of the factors). */
    async revokeAll (userId: string, reason: RevokeReason, tx: Transaction): Promise<number> {
      return await endSessionsOfUser(tx, userId, reason, now())
    },

    /** Ends every live session of the user except `keepSessionId` (password change: the caller stays in). */
    async revokeOthers (userId: string, keepSessionId: string, reason: RevokeReason, tx: Transaction): Promise<number> {
      return await endSessionsOfUser(tx, userId, reason, now(), keepSessionId)
    },

    /**
     * A logout by refresh token: ends the session it belongs to, whatever its generation
     * (whoever holds a genuine token of the session may end it), audited as `logOut` is. A
     * forged token ends nothing. Whether the token named a session of ours (then ended, if it
     * was not already).
     */
    async logOutByRefreshToken (token: string, ip: string): Promise<boolean> {
      const parts = codec.decode(token)
      if (parts === null) return false
      const session = await saltOf(prisma, parts.sessionId)
      if (session === null || !codec.matches(parts, parts.generation, session.secretSalt)) return false
      await endAudited({ id: parts.sessionId, userId: session.userId }, 'logout', 'logout.succeeded', ip)
      return true
    },

    list: sessionLister(prisma, now)
  }
}

export type SessionService = ReturnType<typeof createSessionService>

/** The user's live sessions, most recently used first, `limit` at a time. */
function sessionLister (prisma: PrismaClient, now: () => Date) {
  return async function list (userId: string, currentSessionId: string, { limit, cursor }: { limit: number, cursor?: string | undefined }): Promise<Page<SessionView>> {
    const rows = await liveSessionsPage(prisma, userId, now(), limit, decodeCursor(cursor))
    const items = rows.slice(0, limit).map(row => ({
      id: row.id,
      userAgent: row.userAgent,
      ip: row.ip,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: row.lastUsedAt.toISOString(),
      expiresAt: expiryOf(row).toISOString(),
      current: row.id === currentSessionId
    }))
    const last = rows.length > limit ? rows[limit - 1] : undefined
    return { items, nextCursor: last === undefined ? null : encodeCursor({ at: last.lastUsedAt, id: last.id }) }
  }
}
