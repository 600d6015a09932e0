// Sessions: one row per login, carrying the refresh token's rotation state.
import type { Db, PrismaClient } from '../../db/prisma.js'
import type { Prisma } from '../../generated/prisma/client.js'
import { expiryOf, liveSessionWhere } from './liveness.js'
import type { RefreshTokenCodec } from '../tokens/refresh-tokens.js'
import type { Page } from '../pagination.js'

export interface SessionDeps {
  prisma: PrismaClient
  codec: RefreshTokenCodec
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

export interface SessionView {
  id: string
  userAgent: string | null
  ip: string | null
  createdAt: string
  lastUsedAt: string
  expiresAt: string
  current: boolean
}

/** Why a session ended, kept on the row for the owner and for audits. */
export type RevokeReason =
  | 'logout' | 'logout_all' | 'revoked_by_user' | 'revoked_by_admin' | 'deactivated'
  | 'refresh_reuse' | 'evicted' | 'password_change' | 'password_reset' | 'mfa_removed_by_admin'

export function createSessionService ({ prisma, codec, now }: SessionDeps) {
  /** The one revocation: every session `where` matches that has not ended yet ends now, for `reason`. */
  async function end (where: Prisma.SessionWhereInput, reason: RevokeReason, db: Db = prisma): Promise<number> {
    const { count } = await db.session.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: now(), revokedReason: reason } })
    return count
  }

  return {
    /** Matches the user only while `sessionId` is one of their live sessions (see liveness.ts). */
    liveCaller: (userId: string, sessionId: string) => ({
      id: userId,
      sessions: { some: { id: sessionId, ...liveSessionWhere(now()) } }
    }) satisfies Prisma.UserWhereInput,

    /** How many sessions can still be used, across all users (a gauge for monitoring). */
    async countLive (): Promise<number> {
      return await prisma.session.count({ where: liveSessionWhere(now()) })
    },

    /** True when the session exists, belongs to `userId` and can still be used. */
    async isLive (userId: string, sessionId: string): Promise<boolean> {
      const found = await prisma.session.findFirst({ where: { id: sessionId, userId, ...liveSessionWhere(now()) }, select: { id: true } })
      return found !== null
    },

    /** Ends one session of `userId`; false when it is not theirs or already ended (no oracle). */
    async revoke (userId: string, sessionId: string, reason: RevokeReason): Promise<boolean> {
      return await end({ id: sessionId, userId }, reason) === 1
    },

    /** Ends one session, whoever it belongs to (a refresh token's reuse ends its session). */
    async end (sessionId: string, reason: RevokeReason): Promise<void> {
      await end({ id: sessionId }, reason)
    },

    /** Ends every live session of the user (logout everywhere, password reset, deactivation). */
    async revokeAll (userId: string, reason: RevokeReason, db: Db = prisma): Promise<number> {
      return await end({ userId }, reason, db)
    },

    /** Ends every live session of the user except `keepSessionId` (password change: the caller stays in). */
    async revokeOthers (userId: string, keepSessionId: string, reason: RevokeReason, db: Db = prisma): Promise<number> {
      return await end({ userId, id: { not: keepSessionId } }, reason, db)
    },

    /**
     * Ends the session a refresh token belongs to, whatever its generation: whoever holds a
     * genuine token of the session may end it. A forged token ends nothing.
     */
    async revokeByRefreshToken (token: string, reason: RevokeReason): Promise<void> {
      const parts = codec.decode(token)
      if (parts === null) return
      const session = await prisma.session.findUnique({ where: { id: parts.sessionId }, select: { userId: true, secretSalt: true } })
      if (session === null || !codec.matches(parts, parts.generation, session.secretSalt)) return
      await end({ id: parts.sessionId }, reason)
    },

    list: sessionLister(prisma, now)
  }
}

export type SessionService = ReturnType<typeof createSessionService>

/** The user's live sessions, most recently used first, `limit` at a time. */
function sessionLister (prisma: PrismaClient, now: () => Date) {
  return async function list (userId: string, currentSessionId: string, { limit, cursor }: { limit: number, cursor?: string | undefined }): Promise<Page<SessionView>> {
    const rows = await prisma.session.findMany({
      where: { userId, ...liveSessionWhere(now()) },
      orderBy: [{ lastUsedAt: 'desc' }, { id: 'asc' }],
      take: limit + 1,
      ...(cursor === undefined ? {} : { cursor: { id: cursor }, skip: 1 }),
      select: { id: true, userAgent: true, ip: true, createdAt: true, lastUsedAt: true, idleExpiresAt: true, absoluteExpiresAt: true }
    })
    const items = rows.slice(0, limit).map(row => ({
      id: row.id,
      userAgent: row.userAgent,
      ip: row.ip,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: row.lastUsedAt.toISOString(),
      expiresAt: expiryOf(row).toISOString(),
      current: row.id === currentSessionId
    }))
    return { items, nextCursor: rows.length > limit ? items.at(-1)?.id ?? null : null }
  }
}
