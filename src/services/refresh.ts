// Refresh-token rotation with reuse detection (RFC 9700 4.14.2) and a grace window for honest races.
import type { PrismaClient } from '../db/prisma.js'
import { apiError, isErrorCode } from '../errors.js'
import type { AuditService } from './audit.js'
import type { AuthMetrics } from './metrics.js'
import { expiryOf, type Device } from './sessions.js'
import type { SettingsService } from './settings.js'
import type { RefreshTokenCodec, RefreshTokenParts, createAccessTokenIssuer } from './tokens.js'

export interface RefreshDeps {
  prisma: PrismaClient
  codec: RefreshTokenCodec
  settings: SettingsService
  audit: AuditService
  issueAccessToken: ReturnType<typeof createAccessTokenIssuer>
  now: () => Date
  graceSeconds: number
  /** REQUIRE_EMAIL_VERIFICATION: a session of an unverified user cannot refresh either. */
  requireVerifiedEmail: boolean
  metrics: AuthMetrics
}

export interface RefreshedTokens {
  accessToken: string
  expiresIn: number
  refreshToken: string
  refreshExpiresAt: Date
}

const sessionState = {
  id: true,
  userId: true,
  secretSalt: true,
  generation: true,
  rotatedAt: true,
  revokedAt: true,
  idleExpiresAt: true,
  absoluteExpiresAt: true,
  user: { select: { role: true, isActive: true, emailVerifiedAt: true } }
} as const

export function createRefreshService ({ prisma, codec, settings, audit, issueAccessToken, now, graceSeconds, requireVerifiedEmail, metrics }: RefreshDeps) {
  const load = (id: string) => prisma.session.findUnique({ where: { id }, select: sessionState })
  type SessionState = NonNullable<Awaited<ReturnType<typeof load>>>

  function tokensFor (session: SessionState, generation: number, refreshExpiresAt: Date): RefreshedTokens {
    const lifetimes = settings.tokenLifetimes()
    // Role and verification come from the user's current state: a change reaches the next access token.
    const claims = { sub: session.userId, sid: session.id, role: session.user.role, email_verified: session.user.emailVerifiedAt !== null }
    const access = issueAccessToken(claims, lifetimes.accessTokenTtlSeconds)
    return { accessToken: access.token, expiresIn: access.expiresIn, refreshToken: codec.encode(session.id, generation, session.secretSalt), refreshExpiresAt }
  }

  /** Refuses a session that can no longer refresh, whatever token is presented. */
  function assertUsable (session: SessionState, at: Date): void {
    if (session.revokedAt !== null || !session.user.isActive) throw apiError('AUTH_REFRESH_REVOKED')
    if (expiryOf(session) <= at) throw apiError('AUTH_REFRESH_EXPIRED')
    // Sessions opened before REQUIRE_EMAIL_VERIFICATION was switched on end at their next refresh.
    if (requireVerifiedEmail && session.user.emailVerifiedAt === null) throw apiError('EMAIL_NOT_VERIFIED')
  }

  /** One conditional update: of concurrent callers holding generation G, exactly one moves it to G + 1. */
  async function rotate (session: SessionState, device: Device, at: Date): Promise<RefreshedTokens | null> {
    const lifetimes = settings.tokenLifetimes()
    const idle = new Date(at.getTime() + lifetimes.refreshTokenIdleTtlSeconds * 1000)
    // Rotation never extends the absolute limit.
    const idleExpiresAt = idle < session.absoluteExpiresAt ? idle : session.absoluteExpiresAt
    const { count } = await prisma.session.updateMany({
      where: { id: session.id, generation: session.generation, revokedAt: null },
      data: { generation: session.generation + 1, rotatedAt: at, lastUsedAt: at, idleExpiresAt, ip: device.ip }
    })
    return count === 1 ? tokensFor(session, session.generation + 1, idleExpiresAt) : null
  }

  /**
   * Within the grace window the immediately previous token yields the current one again (the
   * same successor for every racing tab or retried request: never two live successors).
   * Any other retired token is a theft signal: the whole session is revoked.
   */
  async function replay (session: SessionState, parts: RefreshTokenParts, at: Date, device: Device): Promise<RefreshedTokens> {
    const rotatedAgo = session.rotatedAt === null ? Infinity : (at.getTime() - session.rotatedAt.getTime()) / 1000
    if (parts.generation === session.generation - 1 && rotatedAgo <= graceSeconds) {
      return tokensFor(session, session.generation, expiryOf(session))
    }
    await prisma.session.updateMany({
      where: { id: session.id, revokedAt: null },
      data: { revokedAt: at, revokedReason: 'refresh_reuse' }
    })
    await audit.record({ action: 'refresh.reuse_detected', subjectId: session.userId, ip: device.ip, details: { sessionId: session.id, generation: parts.generation } })
    metrics.reuseDetected()
    throw apiError('AUTH_REFRESH_REUSED')
  }

  async function exchange (token: string, device: Device): Promise<RefreshedTokens> {
    const parts = codec.decode(token)
    if (parts === null) throw apiError('AUTH_REFRESH_INVALID')
    const at = now()
    let session = await load(parts.sessionId)
    if (session === null || parts.generation > session.generation || !codec.matches(parts, parts.generation, session.secretSalt)) {
      throw apiError('AUTH_REFRESH_INVALID')
    }
    assertUsable(session, at)
    if (parts.generation === session.generation) {
      const rotated = await rotate(session, device, at)
      if (rotated !== null) return rotated
      // Another request rotated it first: continue from what it left.
      session = await load(parts.sessionId)
      if (session === null) throw apiError('AUTH_REFRESH_REVOKED')
      assertUsable(session, at)
    }
    return replay(session, parts, at, device)
  }

  return {
    /**
     * Exchanges a refresh token for a new access token and a new refresh token, retiring the
     * presented one atomically. Forged or unknown tokens change nothing (no one can end a
     * session they do not hold a genuine token of); a genuine retired token ends the session.
     */
    async refresh (token: string, device: Device): Promise<RefreshedTokens> {
      try {
        const tokens = await exchange(token, device)
        metrics.refresh('success')
        return tokens
      } catch (error) {
        // Refusals count; a database outage is not the client's failure.
        if (error instanceof Error && isErrorCode((error as { code?: unknown }).code)) metrics.refresh('failure')
        throw error
      }
    }
  }
}

export type RefreshService = ReturnType<typeof createRefreshService>
