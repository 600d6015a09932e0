// Liveness and readiness for orchestrators and load balancers.
import type { FastifyInstance, LogLevel } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponses } from '../schemas/common.js'
import { apiError } from '../errors.js'
import { noStore } from './request-context.js'

export interface HealthRoutesOptions {
  /**
   * Resolves when the database answers, with whether it takes writes (a standby, or a
   * primary that came back read-only, answers reads only); rejects otherwise. One round trip:
   * it is polled.
   */
  pingDatabase: () => Promise<{ writable: boolean }>
  /** Probes come every few seconds: their request lines are logged at this level. */
  logLevel: LogLevel
}

export async function healthRoutes (app: FastifyInstance, { pingDatabase, logLevel }: HealthRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  // A cache between a probe and the instance must not answer for it (regression: "ready" from
  // a caching proxy while the database was down).
  routes.addHook('onSend', noStore)

  routes.get('/health', {
    // Never refused: a 429 or a shed 503 here would get a healthy (if busy) instance restarted.
    config: { rateLimit: false, loadShedding: false },
    logLevel,
    schema: {
      tags: ['health'],
      operationId: 'health',
      summary: 'Liveness: the process answers',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) }
    }
  }, async () => ({ status: 'ok' as const }))

  routes.get('/ready', {
    config: { readiness: true },
    logLevel,
    schema: {
      tags: ['health'],
      operationId: 'ready',
      summary: 'Readiness: the database is reachable and takes writes',
      description: '503 while the database is unreachable or read-only (a standby), and while the process sheds load, drains before a shutdown or shuts down, so a load balancer sends traffic elsewhere.',
      response: { 200: Type.Object({ status: Type.Literal('ready') }), ...errorResponses(503) }
    }
  }, async request => {
    let writable: boolean
    try {
      ({ writable } = await pingDatabase())
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed: database unreachable')
      throw apiError('SERVICE_UNAVAILABLE')
    }
    // Every write would fail (SQLSTATE 25006): out of the load balancer until a primary is back,
    // and an error, since it takes an operator.
    if (!writable) {
      request.log.error('readiness check failed: database read-only')
      throw apiError('SERVICE_UNAVAILABLE')
    }
    return { status: 'ready' as const }
  })
}
