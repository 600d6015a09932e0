// The caller's token and sessions: verified claims, token verification for services, listing and revoking sessions.
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RateLimit } from '../config-derived.js'
import { apiError } from '../errors.js'
import { perClientIp } from '../plugins/rate-limits.js'
import { EmptyBody } from '../schemas/accounts.js'
import { authCookies, DISOWNED_SESSION, errorResponses, security } from '../schemas/common.js'
import { AccessClaims, ListQuery, SessionList, SessionParams, VerifyBody, VerifyResponse } from '../schemas/sessions.js'
import type { SessionService } from '../services/sessions/sessions.js'
import { absentBodyAsEmpty, actorOf, callerOf, clearCallerCookies, noStore, type TypedRoutes } from './request-context.js'

export interface SessionRoutesOptions {
  sessions: SessionService
  /** POST /auth/verify, per client ip. */
  verifyLimit: RateLimit
}

export async function sessionRoutes (app: FastifyInstance, { sessions, verifyLimit }: SessionRoutesOptions) {
  const routes = app.withTypeProvider<TypeBoxTypeProvider>()
  routes.addHook('onSend', noStore)

  routes.get('/auth/session', {
    preParsing: [app.authenticate],
    schema: {
      tags: ['auth'],
      operationId: 'getSession',
      summary: "The caller's verified access-token claims (no database read)",
      description: 'Answers from the token alone: a session revoked since the token was issued still shows here until the token expires.',
      security,
      response: { 200: Type.Ref(AccessClaims), ...errorResponses(401) }
    }
  }, async request => callerOf(request).claims)

  routes.post('/auth/verify', {
    config: { rateLimit: perClientIp(verifyLimit) },
    schema: {
      tags: ['auth'],
      operationId: 'verifyToken',
      summary: 'Verify an access token (for other services)',
      description: 'Checks the signature and claims, and that the session is still live, so revocation is seen at once. `payload` is the claims as issued: a role or verification changed since shows from the session\'s next refresh.',
      body: VerifyBody,
      response: { 200: VerifyResponse, ...errorResponses(400, 401, 415, 429) }
    }
  }, async request => {
    const payload = app.accessTokens.verify(request.body.token)
    if (!await sessions.isLive(payload.sub, payload.sid)) throw apiError('AUTH_SESSION_REVOKED')
    return { valid: true as const, payload }
  })
  sessionListRoutes(routes, app, sessions)
}

/** The caller's own sessions: listing them, ending one. */
function sessionListRoutes (routes: TypedRoutes, app: FastifyInstance, sessions: SessionService) {
  routes.get('/auth/sessions', {
    preParsing: [app.authenticate],
    preHandler: [app.requireLiveSession],
    schema: {
      tags: ['auth'],
      operationId: 'listSessions',
      summary: "The caller's live sessions, most recently used first",
      description: '`cursor` is the previous page’s `nextCursor`, opaque; one not in the form the service writes is 400 VALIDATION_FAILED (one built by hand in that form is accepted: it only says where the page starts). It names a place in the order (last use, then id), not a session: ending a session between two pages hides no other.',
      security,
      querystring: ListQuery,
      response: { 200: SessionList, ...errorResponses(400, 401) }
    }
  }, async request => {
    const caller = callerOf(request)
    return sessions.list(caller.userId, caller.sessionId, request.query)
  })

  routes.delete('/auth/sessions/:id', {
    preValidation: absentBodyAsEmpty,
    preParsing: [app.authenticate],
    preHandler: [app.requireLiveSession],
    schema: {
      tags: ['auth'],
      operationId: 'revokeSession',
      summary: 'End one of the caller’s sessions',
      description: `Another user's session, an unknown one, or one ended or expired, is 404. Ending the calling session clears the cookies. ${DISOWNED_SESSION} Audited as \`session.revoked\`.`,
      security,
      params: SessionParams,
      body: EmptyBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401, 404) },
      ...authCookies({ 204: 'cleared' })
    }
  }, async (request, reply) => {
    const actor = actorOf(request)
    if (!await sessions.revokeOwn(actor, request.params.id)) throw apiError('NOT_FOUND')
    if (request.params.id === actor.sessionId) clearCallerCookies(request, reply)
    return reply.code(204).send(null)
  })
}
