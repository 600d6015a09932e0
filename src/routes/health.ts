// Liveness and readiness for orchestrators and load balancers.
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponses } from '../schemas/common.js'
import { apiError } from '../errors.js'

export interface HealthRoutesOptions {
  /** Resolves when the database answers; rejects otherwise. */
  pingDatabase: () => Promise<void>
}

export async function healthRoutes (app: FastifyInstance, { pingDatabase }: HealthRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()

  routes.get('/health', {
    // A liveness probe must never be refused: a 429 here would get a healthy instance restarted.
    config: { rateLimit: false },
    schema: {
      tags: ['health'],
      operationId: 'health',
      summary: 'Liveness: the process answers',
      response: { 200: Type.Object({ status: Type.Literal('ok') }) }
    }
  }, async () => ({ status: 'ok' as const }))

  routes.get('/ready', {
    schema: {
      tags: ['health'],
      operationId: 'ready',
      summary: 'Readiness: the database is reachable',
      response: { 200: Type.Object({ status: Type.Literal('ready') }), ...errorResponses(503) }
    }
  }, async request => {
    try {
      await pingDatabase()
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed: database unreachable')
      throw apiError('SERVICE_UNAVAILABLE')
    }
    return { status: 'ready' as const }
  })
}
