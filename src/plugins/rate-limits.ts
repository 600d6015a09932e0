// Rate limits (@fastify/rate-limit): each route declares its own in `config.rateLimit`, a generous default covers the rest; counters in Redis or memory.
import fastifyRateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore, { type CounterCallback, type CounterStore } from '@fastify/rate-limit/store/RedisStore.js'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Address6 } from 'ip-address'
import { isIPv6 } from 'node:net'
import type { Redis } from 'ioredis'
import type { RateLimit } from '../config-derived.js'
import { apiError } from '../errors.js'

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

/** A route's `config.rateLimit`: at most `limit.max` requests per client ip in its window. */
export function perClientIp (limit: RateLimit) {
  return { max: limit.max, timeWindow: limit.windowSeconds * 1000 }
}

/**
 * The client a per-ip limit counts, as @fastify/rate-limit keys it: the address, an IPv6
 * client by its /64 (one subscriber's whole network) and an IPv4-mapped one as IPv4.
 */
export function clientOf (request: FastifyRequest): string {
  // Undefined once the client has reset its connection, before the limits looked at the
  // request: nobody reads its answer, so any key does (regression: a 500 and an error line).
  const ip = request.ip as string | undefined
  if (ip === undefined) return 'gone'
  if (!isIPv6(ip)) return ip.toLowerCase()
  const address = new Address6(ip)
  return address.isMapped4() ? address.to4().correctForm() : new Address6(`${ip}/64`).startAddress().correctForm()
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A preHandler that limits the requests sharing `keyOf(request)` (an account identifier,
     * say), on top of the route's per-ip limit. `name` keeps each use's counters apart.
     */
    rateLimitBy: (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string) =>
    (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

// LRU entries per in-memory store: enough for many clients, bounded against ip-rotating floods.
const MEMORY_ENTRIES = 10_000

interface StoreOptions {
  cache?: number
  routeInfo?: { method?: string, url?: string }
}

// After Redis failed to answer, the counters stay in memory this long before asking it again:
// a partition (no error, each command waits for its timeout) then costs one request the
// command timeout every few seconds, not every request.
const REDIS_RETRY_MS = 5_000

/**
 * Whether the counters may ask Redis now. A failure (an error, or no answer within the command
 * timeout, which ioredis reports to the command only) marks Redis away: every store counts in
 * memory, and one request every REDIS_RETRY_MS asks again. An answer or a reconnection marks
 * it back. One log line each way.
 */
function redisAvailability (redis: Redis, log: FastifyBaseLogger, now: () => Date) {
  let away = false
  let retryAt = 0
  const failed = (error: Error) => {
    retryAt = now().getTime() + REDIS_RETRY_MS
    if (away) return
    away = true
    log.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'redis unreachable: rate limits count in memory on each instance until it is back')
  }
  const answered = () => {
    if (!away) return
    away = false
    log.info('redis reachable again: rate limits are shared again')
  }
  redis.on('error', failed)
  redis.on('ready', answered)
  return {
    failed,
    answered,
    mayAsk (): boolean {
      if (!away) return true
      const time = now().getTime()
      if (time < retryAt) return false
      // This request asks; the others keep counting in memory until it has its answer.
      retryAt = time + REDIS_RETRY_MS
      return true
    }
  }
}

/**
 * Counters in Redis, shared by every instance; whenever Redis cannot answer (down,
 * unreachable, too slow), the instance counts in its own memory instead, and goes back to
 * Redis as soon as it answers. Why neither fail-closed nor plain fail-open: refusing every
 * request while Redis is away would turn a cache outage into a login outage (OWASP ASVS
 * 11.1.4 asks for anti-automation, not for a single point of failure), and skipping the
 * limits would hand an attacker who can disturb Redis unlimited guesses. Per-instance
 * counters keep every limit in force, at most multiplied by the number of instances.
 */
function sharedStore (redis: Redis, keyPrefix: string, availability: ReturnType<typeof redisAvailability>): FastifyRateLimitStoreCtor {
  class SharedStore {
    private readonly shared: CounterStore
    private readonly local: CounterStore

    constructor (options: StoreOptions) {
      const route = options.routeInfo
      const scope = route === undefined ? 'default' : route.url === undefined ? 'keyed' : `${route.method ?? ''}${route.url}`
      this.shared = new RedisStore(false, false, redis, `${keyPrefix}${scope}:`)
      this.local = new LocalStore(false, false, options.cache ?? MEMORY_ENTRIES)
    }

    incr (key: string, callback: CounterCallback, timeWindow: number, max: number): void {
      if (!availability.mayAsk()) {
        this.local.incr(key, callback, timeWindow, max)
        return
      }
      this.shared.incr(key, (error, result) => {
        if (error === null) {
          availability.answered()
          callback(null, result)
        } else {
          availability.failed(error)
          this.local.incr(key, callback, timeWindow, max)
        }
      }, timeWindow, max)
    }

    child (options: StoreOptions): SharedStore {
      return new SharedStore(options)
    }
  }
  return SharedStore as unknown as FastifyRateLimitStoreCtor
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
    cache: MEMORY_ENTRIES,
    ...(settings.redis === null ? {} : { store: sharedStore(settings.redis, settings.keyPrefix, redisAvailability(settings.redis, app.log, settings.now)) }),
    // The key is the client ip (an IPv6 client by its /64) as Fastify resolved it (clientOf):
    // X-Forwarded-For counts only when it comes from a TRUST_PROXY address, so a client
    // cannot pick a new identity per request.
    keyGenerator: clientOf,
    errorResponseBuilder: () => apiError('RATE_LIMITED')
  })

  app.decorate('rateLimitBy', (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string) => {
    const check = app.createRateLimit({ ...perClientIp(limit), keyGenerator: request => `${name}:${keyOf(request)}` })
    return async function rateLimitBy (request: FastifyRequest, reply: FastifyReply) {
      const state = await check(request)
      if (state.isAllowed) return
      // The headers show whichever limit is closer to its end.
      const shown = Number(reply.getHeader('x-ratelimit-remaining') ?? Number.POSITIVE_INFINITY)
      if (state.isExceeded || state.remaining < shown) {
        reply.header('x-ratelimit-limit', state.max).header('x-ratelimit-remaining', state.remaining).header('x-ratelimit-reset', state.ttlInSeconds)
      }
      if (!state.isExceeded) return
      reply.header('retry-after', state.ttlInSeconds)
      throw apiError('RATE_LIMITED')
    }
  })
}

export const rateLimits = fp(rateLimitsPlugin, { name: 'rate-limits' })
