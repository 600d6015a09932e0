// Refresh-token rotation with reuse detection (RFC 9700 4.14.2) and a grace window for honest races.
import { Lru } from 'toad-cache'
import type { Sql } from '../../db/sql.js'
import { apiError, isErrorCode } from '../../errors.js'
import type { AuthMetrics } from '../metrics.js'
import { expiryOf, sessionStateAt } from './liveness.js'
import { sessionForRefresh, sessionRotation, type RefreshRow } from './session-store.js'
import type { Device, SessionService } from './sessions.js'
import type { SettingsService } from '../admin/settings.js'
import type { AccessTokenIssuer } from '../tokens/access-tokens.js'
import type { RefreshTokenCodec, RefreshTokenParts } from '../tokens/refresh-tokens.js'

export interface RefreshDeps {
  sql: Sql
  codec: RefreshTokenCodec
  sessions: SessionService
  settings: SettingsService
  issueAccessToken: AccessTokenIssuer
  now: () => Date
  graceSeconds: number
  /** REQUIRE_EMAIL_VERIFICATION: a session of an unverified user cannot refresh either. */
  requireVerifiedEmail: boolean
  metrics: AuthMetrics
}

export interface RefreshedTokens {
  /** The session the tokens belong to: the access token's `sid`. */
  sessionId: string
  accessToken: string
  expiresIn: number
  refreshToken: string
  refreshExpiresAt: Date
}

type UserState = 'role' | 'isActive' | 'emailVerifiedAt'

/** A session as a refresh reads it, with its user's state. */
type SessionState = Omit<RefreshRow, UserState> & { user: Pick<RefreshRow, UserState> }

// Salts of sessions refreshed here lately: a salt never changes, so a cached one never goes stale.
const SALT_CACHE_ENTRIES = 20_000

async function loadSession (sql: Sql, id: string): Promise<SessionState | null> {
  const row = await sessionForRefresh(sql, id)
  if (row === null) return null
  const { role, isActive, emailVerifiedAt, ...session } = row
  return { ...session, user: { role, isActive, emailVerifiedAt } }
}

/** The tokens of `generation` of a session: a new access token and that generation's refresh token. */
function tokenMinter ({ codec, settings, issueAccessToken }: Pick<RefreshDeps, 'codec' | 'settings' | 'issueAccessToken'>) {
  return function tokensFor (session: SessionState, generation: number, refreshExpiresAt: Date): RefreshedTokens {
    const lifetimes = settings.tokenLifetimes()
    // Role and verification come from the user's current state: a change reaches the next access token.
    // amr describes the login and auth_time the latest authentication (a reauthentication moves it): both come from the session.
    const access = issueAccessToken({
      userId: session.userId,
      sessionId: session.id,
      role: session.user.role,
      emailVerified: session.user.emailVerifiedAt !== null,
      amr: session.amr ?? ['pwd'],
      authTime: session.authTime
    }, lifetimes.accessTokenTtlSeconds)
    return { sessionId: session.id, accessToken: access.token, expiresIn: access.expiresIn, refreshToken: codec.encode(session.id, generation, session.secretSalt), refreshExpiresAt }
  }
}

/** Refuses a session that can no longer refresh, whatever token is presented. */
function assertUsable (session: SessionState, at: Date, requireVerifiedEmail: boolean): void {
  const state = sessionStateAt(session, session.user, at)
  if (state === 'revoked') throw apiError('AUTH_REFRESH_REVOKED')
  if (state === 'expired') throw apiError('AUTH_REFRESH_EXPIRED')
  // Sessions opened before REQUIRE_EMAIL_VERIFICATION was switched on end at their next refresh.
  if (requireVerifiedEmail && session.user.emailVerifiedAt === null) throw apiError('EMAIL_NOT_VERIFIED')
}

/**
 * Rotation by the one conditional update. The salt is always passed in, never looked up here: a
 * cache miss must not read as "another request rotated first".
 */
function rotator ({ sql, codec, settings, requireVerifiedEmail }: Pick<RefreshDeps, 'sql' | 'codec' | 'settings' | 'requireVerifiedEmail'>, tokensFor: ReturnType<typeof tokenMinter>) {
  const rotateLive = sessionRotation(requireVerifiedEmail)
  const salts = new Lru<Uint8Array>(SALT_CACHE_ENTRIES)

  async function rotate (sessionId: string, generation: number, salt: Uint8Array, device: Device, at: Date): Promise<RefreshedTokens | null> {
    const idle = new Date(at.getTime() + settings.tokenLifetimes().refreshTokenIdleTtlSeconds * 1000)
    const row = await rotateLive(sql, sessionId, generation, at, idle, device.ip)
    if (row === null) return null
    const session = { ...row, secretSalt: salt, rotatedAt: at, revokedAt: null, user: { role: row.role, isActive: true, emailVerifiedAt: row.emailVerifiedAt } }
    return tokensFor(session, row.generation, row.idleExpiresAt)
  }

  return {
    rotate,
    // A copy of its own: the driver's buffer may be a slice of a shared 8 KiB slab, which the cache would keep alive.
    remember: (sessionId: string, salt: Uint8Array) => { salts.set(sessionId, new Uint8Array(salt)) },
    /**
     * One round trip for the refresh of a session whose salt this process has seen: the token is
     * checked against the cached salt first, so a forged token still changes nothing. null when
     * the salt is not cached or the rotation does not apply.
     */
    async rotateCached (parts: RefreshTokenParts, device: Device, at: Date): Promise<RefreshedTokens | null> {
      const salt = salts.get(parts.sessionId)
      if (salt === undefined || !codec.matches(parts, parts.generation, salt)) return null
      return await rotate(parts.sessionId, parts.generation, salt, device, at)
    }
  }
}

export function createRefreshService (deps: RefreshDeps) {
  const { sql, codec, sessions, now, graceSeconds, requireVerifiedEmail, metrics } = deps
  const tokensFor = tokenMinter(deps)
  const rotation = rotator(deps, tokensFor)

  /**
   * Within the grace window the immediately previous token yields the current one again (the
   * same successor for every racing tab or retried request: never two live successors).
   * Any other retired token is a theft signal: the whole session is revoked.
   */
  async function replay (session: SessionState, parts: RefreshTokenParts, at: Date, device: Device): Promise<RefreshedTokens> {
    const rotatedAgo = session.rotatedAt === null ? Infinity : (at.getTime() - session.rotatedAt.getTime()) / 1000
    // Either way: a rotation stamped ahead of this clock (set back since, or another instance's
    // running ahead) opens the window no wider (regression: it stayed open for the step's length).
    if (parts.generation === session.generation - 1 && Math.abs(rotatedAgo) <= graceSeconds) {
      return tokensFor(session, session.generation, expiryOf(session))
    }
    await sessions.endReused(session, device.ip, parts.generation)
    metrics.reuseDetected()
    throw apiError('AUTH_REFRESH_REUSED')
  }

  async function exchange (token: string, device: Device): Promise<RefreshedTokens> {
    const parts = codec.decode(token)
    if (parts === null) throw apiError('AUTH_REFRESH_INVALID')
    const at = now()
    const rotatedAtOnce = await rotation.rotateCached(parts, device, at)
    if (rotatedAtOnce !== null) return rotatedAtOnce
    let session = await loadSession(sql, parts.sessionId)
    if (session === null || parts.generation > session.generation || !codec.matches(parts, parts.generation, session.secretSalt)) {
      throw apiError('AUTH_REFRESH_INVALID')
    }
    rotation.remember(session.id, session.secretSalt)
    assertUsable(session, at, requireVerifiedEmail)
    if (parts.generation === session.generation) {
      const rotated = await rotation.rotate(session.id, session.generation, session.secretSalt, device, at)
      if (rotated !== null) return rotated
      // Another request rotated it first: continue from what it left.
      session = await loadSession(sql, parts.sessionId)
      if (session === null) throw apiError('AUTH_REFRESH_REVOKED')
      assertUsable(session, at, requireVerifiedEmail)
    }
    return replay(session, parts, at, device)
  }

  return {
    /**
     * Exchanges a refresh token for a new access token and a new refresh token, retiring the
     * presented one atomically. Forged or unknown tokens change nothing (no one can end a
     * session they do not hold a genuine token of); a genuine retired token ends the session.
     * No token at all is AUTH_REQUIRED, a refusal counted as the others are.
     */
    async refresh (token: string | undefined, device: Device): Promise<RefreshedTokens> {
      try {
        if (token === undefined || token === '') throw apiError('AUTH_REQUIRED')
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
