// The OpenAPI 3 document (from the route schemas) at /docs/json and interactive docs at /docs.
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { cookieNames } from './cookies.js'

export interface SwaggerSettings {
  publicUrl: string
  cookieSecure: boolean
  version: string
}

async function swaggerPlugin (app: FastifyInstance, settings: SwaggerSettings) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Auth service',
        version: settings.version,
        description: 'Registration, login, rotated refresh tokens; HttpOnly cookies for browsers, Bearer tokens for other clients. Every error is `{statusCode, code, error, message}`.'
      },
      servers: [{ url: settings.publicUrl }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          cookieAuth: { type: 'apiKey', in: 'cookie', name: cookieNames(settings.cookieSecure).access }
        }
      },
      tags: [
        { name: 'auth', description: 'Logging in and out, tokens' },
        { name: 'users', description: "The caller's own account" },
        { name: 'admin', description: 'Administration (role admin)' },
        { name: 'health', description: 'Liveness and readiness' }
      ]
    },
    refResolver: {
      // Shared schemas appear in the document under their $id.
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } })
}

export const swagger = fp(swaggerPlugin, { name: 'swagger' })
