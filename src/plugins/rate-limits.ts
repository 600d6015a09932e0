// Rate limits (@fastify/rate-limit): each route declares its own in `config.rateLimit`, a generous default covers the rest; counters in Redis or memory.
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { RateLimit } from '../config-derived.js'
import { apiError } from '../errors.js'
import { clientOf } from './client-address.js'
import { MEMORY_ENTRIES, sharedStore } from './rate-limit-store.js'

export interface RateLimitSettings {
  /** Per client ip, on every route that declares no limit of its own. */
  defaultLimit: RateLimit
  /** Counters shared by every instance; null: in this process's memory. */
  redis: Redis | null
  /** Namespace of the counters in Redis. */
  keyPrefix: string
  /** The clock that times the pause after Redis failed to answer. */
  now: () => Date
}

/**
 * A route's `config.rateLimit`: at most `limit.max` requests per client ip in its window. It
 * carries the in-memory store's size too: @fastify/rate-limit builds each route's store, and
 * each `createRateLimit` one, from the global settings merged with these, and its global
 * settings keep no `cache` (regression: those stores fell back to LocalStore's 5 000 entries,
 * so a flood from 5 000 addresses gave a client its spent budget back).
 */
export function perClientIp (limit: RateLimit) {
  return { max: limit.max, timeWindow: limit.windowSeconds * 1000, cache: MEMORY_ENTRIES }
}

/**
 * The budgets that several routes share (`rateLimitBy`'s names): one count, whichever route
 * spends it.
 */
export const sharedBudgets = {
  /** The answers that tell whether an address or a name has an account (registration's 409s, a username or email change's), per client ip, RATE_LIMIT_REGISTER. */
  existenceProbes: 'register-ip',
  /** The mails an account asks for (email changes, resent links), per user, RATE_LIMIT_MAIL_ACCOUNT. */
  accountMail: 'mail-account',
  /** The mails to an address nobody has proven to hold yet (registration, email change, resend), per canonical address, RATE_LIMIT_MAIL_ACCOUNT. */
  unprovenRecipient: 'mail-recipient'
} as const

export interface KeyedBudget {
  /**
   * The key is not the caller's own (an identifier or an address anyone may name): its state is
   * never shown in `x-ratelimit-*`, and its 429 says only how long to wait. Shown, it told a
   * stranger how often, and how lately, others had asked for mail to an address or tried to
   * sign in to an account.
   */
  sharedWithStrangers?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A preHandler that limits the requests sharing `keyOf(request)` (an account identifier,
     * say), on top of the route's per-ip limit. `name` keeps each use's counters apart.
     */
    rateLimitBy: (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string, budget?: KeyedBudget) =>
    (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /**
     * The same, for a key known only once the handler runs (the address a service is about
     * to mail, say): the returned function counts `key` and throws 429 beyond the limit.
     * Uses of one `name`, here or in `rateLimitBy`, share one count.
     */
    rateLimitKey: (name: string, limit: RateLimit, budget?: KeyedBudget) =>
    (request: FastifyRequest, reply: FastifyReply, key: string) => Promise<void>
    /**
     * For what a request may do on the side, when the budget allows (a reminder mail): counts
     * `key` and tells whether it was within the limit, never refusing the request nor
     * touching its answer's headers. Shares `name`'s count as the others do.
     */
    rateLimitSpend: (name: string, limit: RateLimit) =>
    (request: FastifyRequest, key: string) => Promise<boolean>
  }
}

async function rateLimitsPlugin (app: FastifyInstance, settings: RateLimitSettings) {
  // Every limited route documents its 429 (the global default reaches routes that declare none).
  app.addHook('onRoute', route => {
    const response = route.schema?.response as Record<string, unknown> | undefined
    if (route.config?.rateLimit === false || response === undefined || '429' in response) return
    response['429'] = { $ref: 'ErrorResponse' }
  })
  await app.register(fastifyRateLimit, {
    global: true,
    ...perClientIp(settings.defaultLimit),
    ...(settings.redis === null ? {} : { store: sharedStore(settings.redis, settings.keyPrefix, app.log, settings.now) }),
    // The key is the client ip (an IPv6 client by its /64) as Fastify resolved it (clientOf):
    // X-Forwarded-For counts only when it comes from a TRUST_PROXY address, and then in one
    // canonical form (canonicaliseIp), so a client cannot pick a new identity per request.
    keyGenerator: clientOf,
    errorResponseBuilder: () => apiError('RATE_LIMITED')
  })

  // One checker per name, so that routes naming the same budget share its count in memory
  // too (each checker has a store of its own; in Redis the name alone keeps counts apart).
  const checkers = new Map<string, { limit: RateLimit, check: ReturnType<FastifyInstance['createRateLimit']> }>()
  // The key each request is being checked for: createRateLimit's keyGenerator sees only the request.
  const keyUnderCheck = new WeakMap<FastifyRequest, string>()
  const checkerOf = (name: string, limit: RateLimit) => {
    const known = checkers.get(name)
    if (known !== undefined) {
      if (known.limit.max !== limit.max || known.limit.windowSeconds !== limit.windowSeconds) throw new Error(`rate limit ${name}: one budget, two limits`)
      return known.check
    }
    const check = app.createRateLimit({ ...perClientIp(limit), keyGenerator: request => `${name}:${keyUnderCheck.get(request) ?? ''}` })
    checkers.set(name, { limit, check })
    return check
  }

  const rateLimitKey = (name: string, limit: RateLimit, { sharedWithStrangers = false }: KeyedBudget = {}) => {
    const check = checkerOf(name, limit)
    return async function rateLimitKey (request: FastifyRequest, reply: FastifyReply, key: string) {
      keyUnderCheck.set(request, key)
      const state = await check(request)
      if (state.isAllowed) return
      // The headers show whichever limit is closer to its end, of those the caller may see.
      const shown = Number(reply.getHeader('x-ratelimit-remaining') ?? Number.POSITIVE_INFINITY)
      if (!sharedWithStrangers && (state.isExceeded || state.remaining < shown)) {
        reply.header('x-ratelimit-limit', state.max).header('x-ratelimit-remaining', state.remaining).header('x-ratelimit-reset', state.ttlInSeconds)
      }
      if (!state.isExceeded) return
      reply.header('retry-after', state.ttlInSeconds)
      throw apiError('RATE_LIMITED')
    }
  }
  app.decorate('rateLimitKey', rateLimitKey)
  app.decorate('rateLimitSpend', (name: string, limit: RateLimit) => {
    const check = checkerOf(name, limit)
    return async function rateLimitSpend (request: FastifyRequest, key: string) {
      keyUnderCheck.set(request, key)
      const state = await check(request)
      return state.isAllowed || !state.isExceeded
    }
  })
  app.decorate('rateLimitBy', (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string, budget?: KeyedBudget) => {
    const limitKey = rateLimitKey(name, limit, budget)
    return async function rateLimitBy (request: FastifyRequest, reply: FastifyReply) {
      await limitKey(request, reply, keyOf(request))
    }
  })
}

export const rateLimits = fp(rateLimitsPlugin, { name: 'rate-limits' })
