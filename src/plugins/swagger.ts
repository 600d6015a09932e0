// The OpenAPI 3 document, built from the route schemas, and (docs-ui.ts) the interactive docs at /docs that serve it.
import { STATUS_CODES } from 'node:http'
import fastifySwagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { absentBodyAsEmpty } from '../routes/request-context.js'
import { errorCatalogue } from '../errors.js'
import { AUTH_COOKIES, EARLY_ANSWERS, type AuthCookieAnswers, type EarlyAnswers } from '../schemas/common.js'
import { cookieNames } from './cookies.js'
import { docsUi, type DocsUiSettings } from './docs-ui.js'

// Marks, on a route's schema, a body the route also takes absent (as {}): the generator
// declares every body required, and the document's transform corrects it.
const OPTIONAL_BODY = 'x-optional-body'

// The request header the authenticated routes honour, told with the schemes they accept.
const SESSION_HEADER_NOTE = 'A request may name the session it is meant for in the `X-Auth-Session-Id` header (the `sessionId` of the `AUTH_TOKEN_EXPIRED` answer, when a call is sent again after a refresh): it is refused with 401 `AUTH_SESSION_MISMATCH`, before it runs, when the access token is of another session.'

type OptionalBodyOperation = { [OPTIONAL_BODY]?: boolean, requestBody?: { required?: boolean } }

/** The document with the bodies that may be left out declared optional, and the marks gone. */
function withOptionalBodies<T extends { paths?: Record<string, Record<string, unknown> | undefined> }> (document: T): T {
  for (const path of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(path ?? {}) as OptionalBodyOperation[]) {
      if (operation[OPTIONAL_BODY] !== true) continue
      delete operation[OPTIONAL_BODY]
      if (operation.requestBody !== undefined) operation.requestBody.required = false
    }
  }
  return document
}

// The headers of the answers, besides their bodies (docs/api.md, "Errors"; docs/security.md, "Rate limits"; docs/api.md, "Tokens
// and cookies" and docs/operations.md, "Logs and request ids").
function responseHeaders (cookies: ReturnType<typeof cookieNames>) {
  const both = `\`${cookies.access}\` and \`${cookies.refresh}\``
  return {
    'X-Request-Id': { description: "The request's id: the caller's X-Request-Id when it is 1–128 visible ASCII characters, else one the service made. On every answer but those the HTTP server makes on the connection itself, to a request it could not read whole: 400 `MALFORMED_REQUEST`, 408, 413 for chunk extensions past 16 KB, 431", schema: { type: 'string' } },
    'Retry-After': { description: 'Seconds to wait before sending the request again', schema: { type: 'integer', minimum: 0 } },
    'WWW-Authenticate': { description: '`Bearer`, with `error="invalid_token"` when a token was presented (RFC 6750 3.1)', schema: { type: 'string' } },
    'Accept-Encoding': { description: '`identity`: the content codings a request body may have (RFC 9110 12.5.3); the service decodes none', schema: { type: 'string' } },
    'X-RateLimit-Limit': { description: "Requests allowed in the window of the limit closest to its end (the client's, or the account's where the route also counts per account). Not on the refusals that come before the limits: 403 `CSRF_REJECTED` (but the admin API's refusal of cookies from another origin, which comes after), 400 for a URL the router refuses, 503 while the service sheds load or shuts down, and the HTTP server's own (400 `MALFORMED_REQUEST`, 408, 413 for chunk extensions, 417, 431)", schema: { type: 'integer', minimum: 0 } },
    'X-RateLimit-Remaining': { description: 'Requests left in that window', schema: { type: 'integer', minimum: 0 } },
    'X-RateLimit-Reset': { description: 'Seconds until that window ends', schema: { type: 'integer', minimum: 0 } },
    'Set-Cookie-Auth': { description: `Cookie transport only (a browser, or \`transport: "cookie"\`): ${both}, HttpOnly, path /, for the session's lifetime; the tokens are then not in the body`, schema: { type: 'string' } },
    'Set-Cookie-SignIn': { description: `Cookie transport only (a browser, or \`transport: "cookie"\`): ${both}, HttpOnly, path /, for the session's lifetime, the tokens then not in the body; and \`${cookies.device}\`, HttpOnly, path /, for 400 days, the browser's device token, which a sign-out leaves (docs/security.md, "Sign-in notices")`, schema: { type: 'string' } },
    'Set-Cookie-Cleared': { description: `Clears ${both} (empty, expired)`, schema: { type: 'string' } }
  }
}

const SET_COOKIE_HEADERS = { set: 'Set-Cookie-Auth', signed_in: 'Set-Cookie-SignIn', cleared: 'Set-Cookie-Cleared' } as const

type Response = { description?: string, headers?: Record<string, unknown> }
type Operation = { [AUTH_COOKIES]?: AuthCookieAnswers, [EARLY_ANSWERS]?: EarlyAnswers, responses?: Record<string, Response> }
type Document = { components?: { headers?: Record<string, unknown> }, paths?: Record<string, Record<string, unknown> | undefined> }

/**
 * What an answer is, where the route's schema says nothing (the generator's "Default Response"):
 * its status's name, and for an error its code where the status has one only, else where the
 * codes are listed (every error is `{statusCode, code, error, message}`, the ErrorResponse schema).
 */
function descriptionOf (status: string): string {
  const name = STATUS_CODES[status] ?? status
  if (Number(status) < 400) return name
  const codes = errorCatalogue.filter(({ statusCode }) => statusCode === Number(status)).map(({ code }) => `\`${code}\``)
  return codes.length === 1 ? `${name}: ${codes[0] as string}` : `${name}: one of the ${status} codes of docs/api.md's catalogue ("Errors")`
}

/**
 * The document with each answer's description and headers: every one its request id but the HTTP server's own
 * (408, 431), 429 and 503 `Retry-After`, 401 `WWW-Authenticate`, 415 `Accept-Encoding`, every
 * answer of a limited route (one that can answer 429) the rate limit's state but those that
 * only come before the limits (408, 417, 431, a 403 that only the CSRF check gives), and the
 * answers that set or clear the auth cookies their `Set-Cookie`.
 */
function withResponseHeaders<T extends Document> (document: T, cookies: ReturnType<typeof cookieNames>): T {
  document.components = { ...document.components, headers: { ...document.components?.headers, ...responseHeaders(cookies) } }
  const ref = (name: keyof ReturnType<typeof responseHeaders>, as: string = name) => ({ [as]: { $ref: `#/components/headers/${name}` } })
  const rateLimitState = { ...ref('X-RateLimit-Limit'), ...ref('X-RateLimit-Remaining'), ...ref('X-RateLimit-Reset') }
  for (const path of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(path ?? {}) as Operation[]) {
      const responses = operation.responses ?? {}
      const cookieAnswers = operation[AUTH_COOKIES] ?? {}
      const early = operation[EARLY_ANSWERS] ?? { beforeLimits: [], beforeRequest: [] }
      delete operation[AUTH_COOKIES]
      delete operation[EARLY_ANSWERS]
      for (const [status, response] of Object.entries(responses)) {
        const cookie = cookieAnswers[Number(status)]
        if (response.description === undefined || response.description === 'Default Response') response.description = descriptionOf(status)
        response.headers = {
          ...response.headers,
          ...(early.beforeRequest.includes(Number(status)) ? {} : ref('X-Request-Id')),
          ...('429' in responses && !early.beforeLimits.includes(Number(status)) ? rateLimitState : {}),
          ...(status === '429' || status === '503' ? ref('Retry-After') : {}),
          ...(status === '401' ? ref('WWW-Authenticate') : {}),
          ...(status === '415' ? ref('Accept-Encoding') : {}),
          ...(cookie === undefined ? {} : ref(SET_COOKIE_HEADERS[cookie], 'Set-Cookie'))
        }
      }
    }
  }
  return document
}

export interface SwaggerSettings {
  publicUrl: string
  cookieSecure: boolean
  version: string
  /** The interactive docs and the document they serve; null: neither (DOCS_ENABLED=false). */
  ui: DocsUiSettings | null
}

async function swaggerPlugin (app: FastifyInstance, settings: SwaggerSettings) {
  app.addHook('onRoute', route => {
    if (route.schema?.body !== undefined && [route.preValidation].flat().includes(absentBodyAsEmpty)) Object.assign(route.schema, { [OPTIONAL_BODY]: true })
  })
  await app.register(fastifySwagger, {
    transformObject: document => 'openapiObject' in document ? withResponseHeaders(withOptionalBodies(document.openapiObject), cookieNames(settings.cookieSecure)) : document.swaggerObject,
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Auth service',
        version: settings.version,
        description: 'Registration, login, rotated refresh tokens; HttpOnly cookies for browsers, Bearer tokens for other clients. Request bodies are `application/json`, sent without a `Content-Encoding`, nor a `Transfer-Encoding` other than `chunked` (415 otherwise). Every error is `{statusCode, code, error, message}`.'
      },
      servers: [{ url: settings.publicUrl }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: SESSION_HEADER_NOTE },
          cookieAuth: { type: 'apiKey', in: 'cookie', name: cookieNames(settings.cookieSecure).access, description: SESSION_HEADER_NOTE }
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
  if (settings.ui !== null) await docsUi(app, settings.ui)
}

export const swagger = fp(swaggerPlugin, { name: 'swagger', dependencies: ['rate-limits', 'client-addresses'] })
