// The rate limits' counters in Redis, shared by every instance, with this process's memory standing in whenever Redis cannot answer.
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore, { type CounterCallback, type CounterStore } from '@fastify/rate-limit/store/RedisStore.js'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'

// LRU entries per in-memory store: enough for many clients, bounded against ip-rotating floods.
export const MEMORY_ENTRIES = 10_000

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

const ignoreCount: CounterCallback = () => {}

/**
 * Counters in Redis, shared by every instance; whenever Redis cannot answer (down,
 * unreachable, too slow), the instance counts in its own memory instead, and goes back to
 * Redis as soon as it answers. Why neither fail-closed nor plain fail-open: refusing every
 * request while Redis is away would turn a cache outage into a login outage (OWASP ASVS
 * 11.1.4 asks for anti-automation, not for a single point of failure), and skipping the
 * limits would hand an attacker who can disturb Redis unlimited guesses. Per-instance
 * counters, kept even while Redis answers, keep every limit in force, at most multiplied by
 * the number of instances (each goes on from the share it counted).
 */
export function sharedStore (redis: Redis, keyPrefix: string, log: FastifyBaseLogger, now: () => Date): FastifyRateLimitStoreCtor {
  const availability = redisAvailability(redis, log, now)
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
          // Memory counts this instance's share all along: when Redis goes away, the count goes
          // on from it rather than from zero (regression: a client that had spent its budget
          // through Redis got all of it again on every instance, and a stalled event loop,
          // taken for an outage, gave it back on a single one).
          this.local.incr(key, ignoreCount, timeWindow, max)
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
