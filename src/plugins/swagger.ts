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
        { name: 'mfa', description: 'Second factor (TOTP, recovery codes) and fresh authentication' },
        { name: 'passkeys', description: 'Passkeys (WebAuthn): registration, management, passwordless sign-in, options for the second factor and fresh authentication' },
        { name: 'admin', description: 'Administration (role admin)' },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'keys', description: 'Public keys for verifying access tokens' }
      ]
    },
    refResolver: {
      // Shared schemas appear in the document under their $id.
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // No call to the public validator: the docs page talks to this service only.
    uiConfig: { deepLinking: true, validatorUrl: null },
    // The page and its assets get a policy of their own (set by Swagger UI on its routes
    // only, replacing the API's `default-src 'none'`): scripts, styles and calls from this
    // origin, no inline script, no framing.
    staticCSP: {
      'default-src': ["'self'"],
      'base-uri': ["'self'"],
      'connect-src': ["'self'"],
      'font-src': ["'self'", 'data:'],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
      'img-src': ["'self'", 'data:'],
      'object-src': ["'none'"],
      'script-src': ["'self'"],
      'script-src-attr': ["'none'"],
      'style-src': ["'self'"]
    }
  })
}

export const swagger = fp(swaggerPlugin, { name: 'swagger' })
