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
  // One line when Redis goes away and one when it is back, not one per failed attempt.
  let reachable = true
  redis.on('error', (error: Error) => {
    if (!reachable) return
    reachable = false
    app.log.warn({ err: { message: error.message, code: (error as { code?: string }).code } }, 'redis unreachable: rate limits count in memory on each instance until it is back')
  })
  redis.on('ready', () => {
    if (reachable) return
    reachable = true
    app.log.info('redis reachable again: rate limits are shared again')
  })
  app.decorate('redis', redis)
  app.addHook('onClose', async () => { redis.disconnect() })
  // Start on the shared counters when Redis is there; when it is not, start anyway (within
  // connectTimeout) and count in memory until it comes.
  await new Promise<void>(resolve => {
    const settle = () => {
      redis.off('ready', settle)
      redis.off('error', settle)
      resolve()
    }
    redis.on('ready', settle)
    redis.on('error', settle)
  })
}

export const redis = fp(redisPlugin, { name: 'redis' })
