// The Redis connection (REDIS_URL) that shares rate-limit counters between instances; null without REDIS_URL; closed with the app.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'

export interface RedisSettings {
  /** REDIS_URL; unset: no connection and `app.redis` is null. */
  url: string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection, or null when none is configured. */
    redis: Redis | null
  }
}

async function redisPlugin (app: FastifyInstance, { url }: RedisSettings) {
  if (url === undefined) {
    app.decorate('redis', null)
    return
  }
  // Loaded only when configured: a single instance never needs the client (docs/benchmarks.md, Memory).
  const { Redis } = await import('ioredis')
  const redis = new Redis(url, {
    // Fail fast: while Redis is away a command errors at once instead of waiting in a
    // queue, so no request hangs on it (the rate limits then count in memory).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    connectTimeout: 2000,
    // Keep trying to come back, at most every 5 s.
    retryStrategy: attempt => Math.min(attempt * 200, 5000)
  })
  // The rate limits say when Redis goes away and comes back (plugins/rate-limits.ts); without
  // a listener, ioredis would print every failed attempt to reconnect.
  redis.on('error', () => {})
  app.decorate('redis', redis)
  app.addHook('onClose', async () => { redis.disconnect() })
  // Start on the shared counters when Redis is there; when it is not, start anyway (within
  // connectTimeout) and count in memory until it comes. A Redis that answers but refuses the
  // connection's setup (a `/db` it does not have, wrong credentials) is a bad setting, not an
  // outage: ioredis would go on in db 0, or retry for ever, with nothing said (regression).
  const refusal = await new Promise<Error | null>(resolve => {
    const settle = (error?: Error) => {
      redis.off('ready', settle)
      redis.off('error', settle)
      resolve(error !== undefined && isRefusal(error) ? error : null)
    }
    redis.on('ready', settle)
    redis.on('error', settle)
  })
  if (refusal !== null) {
    redis.disconnect()
    // The message is Redis's ("ERR DB index is out of range", "WRONGPASS ..."): never the URL.
    throw new Error(`REDIS_URL: Redis refused the connection's setup: ${refusal.message}`)
  }
  // Later on (Redis restarted with fewer databases, the password changed), ioredis emits the
  // refusal and carries on; the rate limits log it as Redis being unreachable, and this says why.
  redis.on('error', error => {
    if (isRefusal(error)) app.log.error({ err: { message: error.message } }, 'redis refused the connection\'s setup: check REDIS_URL')
  })
}

/**
 * Redis's refusal of the connection's setup: a database it does not have (or, in cluster mode,
 * any `/db`), credentials it does not take. An answer that only says Redis is busy for now
 * (BUSY with a long script, LOADING, a failover's) passes, as an outage does: the instance
 * starts and counts in memory until Redis serves (regression: BUSY refused the start).
 */
function isRefusal (error: Error): boolean {
  return error.name === 'ReplyError' && !/^(BUSY|LOADING|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/.test(error.message)
}

export const redis = fp(redisPlugin, { name: 'redis' })
