// Token lifetimes in force: environment defaults, overridden at run time by admins through the database.
import type { Config } from '../../config.js'
import { lockFor } from '../../db/locks.js'
import type { PrismaClient } from '../../db/prisma.js'
import { apiError } from '../../errors.js'
import { lifetimeOrderProblems, type Lifetimes } from './lifetime-bounds.js'
import type { AuditService } from './audit.js'
import type { AdminActor } from './admin-actor.js'

export type TokenLifetimes = Lifetimes

const KEY = 'tokenLifetimes'

/** What is wrong with a set of lifetimes, as the configuration's checks say it at start (see lifetimeOrderProblems); else null. */
function lifetimesProblem (lifetimes: TokenLifetimes): string | null {
  const [problem] = lifetimeOrderProblems(lifetimes)
  return problem === undefined ? null : `body/${problem.lifetime} must be ${problem.rule}`
}

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
  // Bumped by each update here: a periodic read begun before it may return the row as it was.
  let updatesHere = 0
  let timer: NodeJS.Timeout | undefined

  /** The lifetimes the stored row sets: the defaults, overridden by what it holds. */
  const storedIn = (row: { value: unknown } | null): TokenLifetimes => ({ ...defaults, ...(row?.value as Partial<TokenLifetimes> | undefined) })

  async function load (): Promise<void> {
    const updatesBefore = updatesHere
    const row = await prisma.setting.findUnique({ where: { key: KEY } })
    if (updatesHere === updatesBefore) current = storedIn(row)
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

    /**
     * Stores a partial change and applies it here at once; the result must keep the lifetimes'
     * order (see lifetimeOrderProblems).
     * Audited with the values before and after, both as stored: this instance's copy may be
     * older than a change made through another.
     */
    async update (actor: AdminActor, changes: Partial<TokenLifetimes>): Promise<TokenLifetimes> {
      const result = await prisma.$transaction(async tx => {
        await actor.confirm(tx)
        await lockFor(tx, KEY)
        const before = storedIn(await tx.setting.findUnique({ where: { key: KEY } }))
        const after = { ...before, ...changes }
        const problem = lifetimesProblem(after)
        if (problem !== null) return { problem }
        await tx.setting.upsert({ where: { key: KEY }, create: { key: KEY, value: { ...after } }, update: { value: { ...after } } })
        await audit.recordIn(tx, { action: 'settings.changed', actorId: actor.userId, ip: actor.ip, details: { before: { ...before }, after: { ...after } } })
        return after
      })
      if ('problem' in result) throw apiError('VALIDATION_FAILED', result.problem)
      updatesHere++
      current = result
      return result
    }
  }
}

export type SettingsService = ReturnType<typeof createSettingsService>
