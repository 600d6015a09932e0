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
