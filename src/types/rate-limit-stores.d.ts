// Types for the two counter stores that @fastify/rate-limit ships but does not export from its index.
declare module '@fastify/rate-limit/store/LocalStore.js' {
  import type { CounterStore } from '@fastify/rate-limit/store/RedisStore.js'

  /** In-process counters in a bounded LRU map. */
  export default class LocalStore implements CounterStore {
    constructor (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number)
    incr: CounterStore['incr']
    read: CounterStore['read']
  }
}

declare module '@fastify/rate-limit/store/RedisStore.js' {
  import type { Redis } from 'ioredis'

  export interface CounterResult { current: number, ttl: number }
  export type CounterCallback = (error: Error | null, result?: CounterResult) => void
  export interface CounterStore {
    incr: (key: string, callback: CounterCallback, timeWindow: number, max: number) => void
    read: (key: string, callback: CounterCallback, timeWindow: number, max: number) => void
  }

  /** Counters in Redis, incremented and expired atomically by a Lua script. */
  export default class RedisStore implements CounterStore {
    constructor (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key?: string)
    incr: CounterStore['incr']
    read: CounterStore['read']
  }
}
