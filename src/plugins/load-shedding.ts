// Refusing work the process cannot do well: 503 SERVICE_UNAVAILABLE while the event loop is saturated or the server is shutting down; draining connections before and then.
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'

export interface LoadSheddingSettings {
  /** Mean event loop delay (ms) above which requests are refused; 0 disables. */
  maxEventLoopDelayMs: number
  /** Share of time the event loop may be busy (0–1) before requests are refused; 0 disables. */
  maxEventLoopUtilization: number
}

const SAMPLE_INTERVAL_MS = 1000

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: answered even under pressure (liveness, metrics: what operators need most then). */
    loadShedding?: boolean
    /** true: the readiness probe, refused from the moment the process starts draining. */
    readiness?: boolean
  }
  interface FastifyInstance {
    /**
     * Before a shutdown (SHUTDOWN_DRAIN_SECONDS): every request is still served, but the
     * readiness probe answers 503 and each connection closes after its next answer.
     */
    drain: () => void
    /** Draining or closing: every answer closes its connection. */
    isWindingDown: () => boolean
  }
}

/**
 * A saturated process answers 503 at once, before any work, so the proxy or client retries
 * elsewhere or later (Retry-After) instead of every request slowing down together. Measured
 * by @fastify/under-pressure every second.
 */
async function loadSheddingPlugin (app: FastifyInstance, settings: LoadSheddingSettings) {
  // The samples taken while the app is still starting measure start-up work, not load.
  let armedAt = Infinity
  app.addHook('onReady', async () => { armedAt = Date.now() + 2 * SAMPLE_INTERVAL_MS })
  await app.register(underPressure, {
    maxEventLoopDelay: settings.maxEventLoopDelayMs,
    maxEventLoopUtilization: settings.maxEventLoopUtilization,
    sampleInterval: SAMPLE_INTERVAL_MS,
    // Utilization over the last sample, not since start-up.
    eventLoopUtilizationMode: 'interval',
    pressureHandler: async request => {
      if (request.routeOptions.config.loadShedding === false || Date.now() < armedAt) return
      throw apiError('SERVICE_UNAVAILABLE')
    }
  })

  // Closing the server closes the keep-alive connections that are idle at that moment, and a
  // request a client or proxy is sending on one just then is lost (a reset; nginx never resends
  // a POST). Draining first retires them one by one: each closes after an answer, which the
  // client sees before it sends anything more, while the balancer learns from /ready to stop.
  let draining = false
  app.decorate('drain', () => { draining = true })

  // Fastify's own 503 while closing (return503OnClosing) lacks the catalogue's `code`: the
  // same refusal, for requests that arrive on open connections after shutdown has begun.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  const windingDown = () => draining || closing
  app.decorate('isWindingDown', windingDown)
  app.addHook('onRequest', (request, _reply, done) => {
    const refused = closing || (draining && request.routeOptions.config.readiness === true)
    done(refused ? apiError('SERVICE_UNAVAILABLE') : undefined)
  })
  // A request in flight when shutdown began is answered in full, then its keep-alive
  // connection is closed: the server only closes connections that are idle when it stops,
  // and would otherwise wait for this one until the client's keep-alive ends.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (windingDown()) reply.header('connection', 'close')
    done(null, payload)
  })
}

export const loadShedding = fp(loadSheddingPlugin, { name: 'load-shedding', dependencies: ['error-handler'] })
