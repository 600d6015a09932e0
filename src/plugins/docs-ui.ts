// The interactive docs under /docs (Swagger UI): the page, its assets and the OpenAPI document, one rate limit for all of them.
import { createHash } from 'node:crypto'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { RateLimit } from '../config-derived.js'
import { clientOf } from './client-address.js'

export const DOCS_PREFIX = '/docs'

export interface DocsUiSettings {
  /** Per client ip, for every request under the prefix. */
  limit: RateLimit
}

/** Whether `If-None-Match` names `etag` (the weak comparison of RFC 9110 13.1.2, which a GET uses). */
function holds (ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  return ifNoneMatch.split(',').some(tag => { const t = tag.trim(); return t === '*' || t.replace(/^W\//, '') === etag })
}

/**
 * The document's handler: the document is some 280 KB of JSON, so it is serialised once, at
 * start, rather than at every request (milliseconds of CPU each); its ETag lets a cache that
 * holds it have a 304 instead.
 */
function documentHandler (app: FastifyInstance) {
  let body = ''
  let etag = ''
  app.addHook('onReady', async () => {
    body = JSON.stringify(app.swagger())
    etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
  })
  return async function openApiDocument (request: FastifyRequest, reply: FastifyReply) {
    reply.header('etag', etag)
    if (holds(request.headers['if-none-match'], etag)) return reply.code(304).send()
    return reply.type('application/json; charset=utf-8').send(body)
  }
}

async function docsUiScope (app: FastifyInstance, settings: DocsUiSettings) {
  const withinLimit = app.rateLimitKey('docs', settings.limit)
  // After the default limit's check (a route's onRequest), so that the headers show whichever is closer to its end.
  app.addHook('preHandler', async (request, reply) => { await withinLimit(request, reply, clientOf(request)) })
  // Swagger UI serialises the document again at every request and takes no handler of its own for it.
  const openApiDocument = documentHandler(app)
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url === `${DOCS_PREFIX}/json`) route.handler = openApiDocument
  })
  await app.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    // No call to the public validator: the docs page talks to this service only.
    uiConfig: { deepLinking: true, validatorUrl: null },
    // The page and the document change with each release: a cache asks again every time
    // (without it, a shared cache could serve a former release's document after a deploy).
    uiHooks: {
      onRequest: (_request, reply, done) => {
        reply.header('cache-control', 'no-cache')
        done()
      }
    },
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

/** Registers the docs in a scope of their own: its hooks (the limit, the document's handler) reach no other route. */
export async function docsUi (app: FastifyInstance, settings: DocsUiSettings) {
  await app.register(docsUiScope, settings)
}
