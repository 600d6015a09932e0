// Token lifetimes in force. Defaults come from the environment; the admin API will override them at run time.
import type { Config } from '../config.js'

export interface TokenLifetimes {
  accessTokenTtlSeconds: number
  refreshTokenIdleTtlSeconds: number
  sessionAbsoluteTtlSeconds: number
}

export function createSettingsService (config: Config) {
  const defaults: TokenLifetimes = {
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenIdleTtlSeconds: config.REFRESH_TOKEN_IDLE_TTL_SECONDS,
    sessionAbsoluteTtlSeconds: config.SESSION_ABSOLUTE_TTL_SECONDS
  }
  return {
    /** Synchronous on purpose: read on every token issue, it must cost no database round trip. */
    tokenLifetimes: (): TokenLifetimes => defaults
  }
}

export type SettingsService = ReturnType<typeof createSettingsService>
