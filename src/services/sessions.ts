// Sessions: one row per login, carrying the refresh token's rotation state.
import type { PrismaClient } from '../db/prisma.js'
import type { RefreshTokenCodec } from './tokens.js'
import type { SettingsService } from './settings.js'

type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

export interface SessionDeps {
  prisma: PrismaClient
  codec: RefreshTokenCodec
  settings: SettingsService
  now: () => Date
  maxSessionsPerUser: number
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

export function createSessionService ({ prisma, codec, settings, now, maxSessionsPerUser }: SessionDeps) {
  /** Sessions still usable at `at`: not revoked, neither idle- nor absolutely expired. */
  const liveAt = (at: Date) => ({ revokedAt: null, idleExpiresAt: { gt: at }, absoluteExpiresAt: { gt: at } })

  return {
    liveAt,

    /**
     * Opens a new session for a login: always a new id and a new secret (no session
     * fixation), and evicts the least recently used sessions beyond the per-user cap.
     */
    async start (userId: string, device: Device): Promise<StartedSession> {
      const at = now()
      const lifetimes = settings.tokenLifetimes()
      const salt = codec.newSalt()
      const idleExpiresAt = new Date(at.getTime() + lifetimes.refreshTokenIdleTtlSeconds * 1000)
      const absoluteExpiresAt = new Date(at.getTime() + lifetimes.sessionAbsoluteTtlSeconds * 1000)
      const session = await prisma.$transaction(async tx => {
        const created = await tx.session.create({
          data: {
            userId,
            secretSalt: salt,
            userAgent: device.userAgent?.slice(0, 512) ?? null,
            ip: device.ip,
            createdAt: at,
            lastUsedAt: at,
            idleExpiresAt,
            absoluteExpiresAt
          },
          select: { id: true }
        })
        await evictBeyondCap(tx, userId, at)
        return created
      })
      return {
        sessionId: session.id,
        refreshToken: codec.encode(session.id, 0, salt),
        refreshExpiresAt: idleExpiresAt < absoluteExpiresAt ? idleExpiresAt : absoluteExpiresAt
      }
    }
  }

  async function evictBeyondCap (tx: Transaction, userId: string, at: Date): Promise<void> {
    const surplus = await tx.session.findMany({
      where: { userId, ...liveAt(at) },
      orderBy: [{ lastUsedAt: 'desc' }, { createdAt: 'desc' }],
      skip: maxSessionsPerUser,
      select: { id: true }
    })
    if (surplus.length === 0) return
    await tx.session.updateMany({
      where: { id: { in: surplus.map(s => s.id) } },
      data: { revokedAt: at, revokedReason: 'evicted' }
    })
  }
}

export type SessionService = ReturnType<typeof createSessionService>
