// Rate limits (@fastify/rate-limit): each route declares its own in `config.rateLimit`, a generous default covers the rest; counters in Redis or memory.
import fastifyRateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import LocalStore from '@fastify/rate-limit/store/LocalStore.js'
import RedisStore, { type CounterCallback, type CounterStore } from '@fastify/rate-limit/store/RedisStore.js'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Address6 } from 'ip-address'
import { isIPv4, isIPv6 } from 'node:net'
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
  /**
   * Whether a proxy's X-Forwarded-For names the client (TRUST_PROXY): only then can
   * `request.ip` be anything but the socket's own address, which Node spells canonically.
   */
  behindProxy: boolean
}

/** A route's `config.rateLimit`: at most `limit.max` requests per client ip in its window. */
export function perClientIp (limit: RateLimit) {
  return { max: limit.max, timeWindow: limit.windowSeconds * 1000 }
}

/**
 * An address in one form, or null for a value that is none: a port after an IPv4 address or
 * a bracketed IPv6 one is dropped, an IPv4-mapped IPv6 address becomes IPv4, and IPv6 takes
 * its canonical spelling. Some proxies write `ip:port` into X-Forwarded-For; taken as is,
 * each port was a new client for the limits (regression).
 */
export function canonicalIp (value: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value)
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(value)
  const address = bracketed?.[1] ?? v4WithPort?.[1] ?? value
  if (isIPv4(address)) return address
  if (!isIPv6(address)) return null
  const v6 = new Address6(address)
  return v6.isMapped4() ? v6.to4().correctForm() : v6.correctForm()
}

/**
 * Makes `request.ip` a canonical address, for the limits, the sessions and the audit trail
 * alike. A trusted proxy's X-Forwarded-For entry that is no address at all (a misconfigured
 * proxy, or one passing on what the client wrote) becomes the proxy's own address: such
 * requests then share one identity instead of each naming a new one.
 */
function canonicaliseIp (request: FastifyRequest): void {
  const ip = request.ip as string | undefined
  // Undefined once the client has reset its connection; IPv4, the common case, is already canonical.
  if (ip === undefined || isIPv4(ip)) return
  const socketAddress = request.socket.remoteAddress
  const canonicalAddress = canonicalIp(ip) ?? (socketAddress === undefined ? null : canonicalIp(socketAddress))
  if (canonicalAddress !== null && canonicalAddress !== ip) Object.defineProperty(request, 'ip', { value: canonicalAddress, enumerable: true })
}

/**
 * The client a per-ip limit counts, as @fastify/rate-limit keys it: the address (made
 * canonical on arrival behind a proxy, canonicaliseIp), an IPv4-mapped one as IPv4, an IPv6
 * client by its /64 (one subscriber's whole network).
 */
export function clientOf (request: FastifyRequest): string {
  // Undefined once the client has reset its connection, before the limits looked at the
  // request: nobody reads its answer, so any key does (regression: a 500 and an error line).
  const ip = request.ip as string | undefined
  if (ip === undefined) return 'gone'
  if (!isIPv6(ip)) return ip
  // A dual-stack socket's IPv4 client: without a proxy, no hook has made it IPv4.
  const address = new Address6(ip)
  return address.isMapped4() ? address.to4().correctForm() : new Address6(`${ip}/64`).startAddress().correctForm()
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

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A preHandler that limits the requests sharing `keyOf(request)` (an account identifier,
     * say), on top of the route's per-ip limit. `name` keeps each use's counters apart.
     */
    rateLimitBy: (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string) =>
    (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /**
     * The same, for a key known only once the handler runs (the address a service is about
     * to mail, say): the returned function counts `key` and throws 429 beyond the limit.
     * Uses of one `name`, here or in `rateLimitBy`, share one count.
     */
    rateLimitKey: (name: string, limit: RateLimit) =>
    (request: FastifyRequest, reply: FastifyReply, key: string) => Promise<void>
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
    // X-Forwarded-For counts only when it comes from a TRUST_PROXY address, and then in one
    // canonical form (canonicaliseIp), so a client cannot pick a new identity per request.
    keyGenerator: clientOf,
    errorResponseBuilder: () => apiError('RATE_LIMITED')
  })

  // At the root, ahead of every route's own hooks (its limits among them) and every handler: one
  // place for the whole app. Only behind a proxy: a hook on every request costs the hot paths.
  if (settings.behindProxy) app.addHook('onRequest', (request, _reply, done) => { canonicaliseIp(request); done() })

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

  const rateLimitKey = (name: string, limit: RateLimit) => {
    const check = checkerOf(name, limit)
    return async function rateLimitKey (request: FastifyRequest, reply: FastifyReply, key: string) {
      keyUnderCheck.set(request, key)
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
  }
  app.decorate('rateLimitKey', rateLimitKey)
  app.decorate('rateLimitBy', (name: string, limit: RateLimit, keyOf: (request: FastifyRequest) => string) => {
    const limitKey = rateLimitKey(name, limit)
    return async function rateLimitBy (request: FastifyRequest, reply: FastifyReply) {
      await limitKey(request, reply, keyOf(request))
    }
  })
}

export const rateLimits = fp(rateLimitsPlugin, { name: 'rate-limits' })
