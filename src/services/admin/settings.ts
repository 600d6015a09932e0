// Token lifetimes in force: environment defaults, overridden at run time by admins through the database.
import type { Config } from '../../config.js'
import { lockFor } from '../../db/locks.js'
import type { PrismaClient } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import type { AuditService } from './audit.js'
import type { Actor } from './users.js'

export interface TokenLifetimes {
  accessTokenTtlSeconds: number
  refreshTokenIdleTtlSeconds: number
  sessionAbsoluteTtlSeconds: number
}

const KEY = 'tokenLifetimes'

export interface SettingsDeps {
  prisma: PrismaClient
  config: Config
  audit: AuditService
  onError: (error: unknown) => void
}

/**
 * Every instance keeps the settings in memory, so issuing a token costs no database round
 * trip, and re-reads them every SETTINGS_REFRESH_SECONDS: a change made through any
 * instance applies to tokens issued afterwards on all of them within that delay.
 */
export function createSettingsService ({ prisma, config, audit, onError }: SettingsDeps) {
  const defaults: TokenLifetimes = {
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenIdleTtlSeconds: config.REFRESH_TOKEN_IDLE_TTL_SECONDS,
    sessionAbsoluteTtlSeconds: config.SESSION_ABSOLUTE_TTL_SECONDS
  }
  let current = defaults
  let timer: NodeJS.Timeout | undefined

  async function load (): Promise<void> {
    const row = await prisma.setting.findUnique({ where: { key: KEY } })
    current = { ...defaults, ...(row?.value as Partial<TokenLifetimes> | undefined) }
  }

  return {
    tokenLifetimes: (): TokenLifetimes => current,

    /** Loads the stored settings, then keeps them fresh until `stop`. */
    async start (): Promise<void> {
      await load()
      timer = setInterval(() => { load().catch(onError) }, config.SETTINGS_REFRESH_SECONDS * 1000)
      timer.unref()
    },

    stop (): void {
      clearInterval(timer)
    },

    /** Stores a partial change and applies it here at once; the result must keep absolute ≥ idle. Audited with the values before and after. */
    async update (actor: Actor, changes: Partial<TokenLifetimes>): Promise<TokenLifetimes> {
      const before = current
      const next = await prisma.$transaction(async tx => {
        await lockFor(tx, KEY)
        const row = await tx.setting.findUnique({ where: { key: KEY } })
        const merged = { ...defaults, ...(row?.value as Partial<TokenLifetimes> | undefined), ...changes }
        if (merged.sessionAbsoluteTtlSeconds < merged.refreshTokenIdleTtlSeconds) return null
        await tx.setting.upsert({ where: { key: KEY }, create: { key: KEY, value: { ...merged } }, update: { value: { ...merged } } })
        return merged
      })
      if (next === null) throw apiError('VALIDATION_FAILED', 'body/sessionAbsoluteTtlSeconds must be at least refreshTokenIdleTtlSeconds')
      current = next
      await audit.record({ action: 'settings.changed', actorId: actor.userId, ip: actor.ip, details: { before: { ...before }, after: { ...next } } })
      return next
    }
  }
}

export type SettingsService = ReturnType<typeof createSettingsService>
