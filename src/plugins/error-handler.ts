// Every failure leaves in the catalogue's shape {statusCode, code, error, message}; 5xx bodies carry no internals.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { databaseNeedsOperator, isDatabaseUnavailable, isTransactionConflict, lastLineOf } from '../db/errors.js'
import { apiError, isErrorCode, type ErrorCode } from '../errors.js'
import { EARLY_ANSWERS, errorResponses, type EarlyAnswers } from '../schemas/common.js'
import { corsAnswerHeaders, SAFE_METHODS } from './cross-origin.js'
import { answeredBeforeItsBody, bodyStillArriving, maxBodyPiecesOf, readOnBounded } from './request-framing.js'
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.js'
import { apiSecurityHeaders } from './security-headers.js'

/** Every 503 tells clients when to try again (RFC 9110 10.2.3). */
const RETRY_AFTER_SECONDS = 5
/** A transaction that lost a conflict can be sent again at once: the other one has gone on. */
const CONFLICT_RETRY_AFTER_SECONDS = 1

/**
 * The longest path parameter the router hands to a route: a passkey's credential id, up to
 * 1023 bytes as 1364 characters of base64url (src/schemas/passkeys.ts), the longest any
 * route's schema accepts. Past it, the router refuses the URL (FST_ERR_MAX_PARAM_LENGTH).
 */
export const MAX_PARAM_LENGTH = 1364

// Fastify's own errors, translated to catalogue codes.
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  // Raised by the router before any hook: a malformed %-escape, a parameter past MAX_PARAM_LENGTH.
  FST_ERR_BAD_URL: 'VALIDATION_FAILED',
  FST_ERR_MAX_PARAM_LENGTH: 'VALIDATION_FAILED'
}

// The statuses @fastify/static answers with, as catalogue codes. Its 403 (a path climbing out
// of its root, a name whose spelling it cannot check, as one too long for the file system) is
// a 404: there is no such file to serve.
const pluginStatusCodes: Record<number, ErrorCode> = { 403: 'NOT_FOUND', 404: 'NOT_FOUND', 412: 'PRECONDITION_FAILED', 416: 'RANGE_NOT_SATISFIABLE' }

// RFC 6750 3.1: a 401 names the scheme, and says invalid_token when a token was presented.
const invalidTokenCodes = new Set<ErrorCode>([
  'AUTH_TOKEN_INVALID', 'AUTH_TOKEN_EXPIRED', 'AUTH_SESSION_REVOKED',
  'AUTH_REFRESH_INVALID', 'AUTH_REFRESH_EXPIRED', 'AUTH_REFRESH_REVOKED', 'AUTH_REFRESH_REUSED'
])

interface ErrorBody { statusCode: number, code: string, error: string, message: string, methods?: string[], sessionId?: string }

/**
 * A client that hung up, or was cut off for slowness, while its body was arriving: the body
 * reader's error is Node's ECONNRESET "aborted", which is no news about the database.
 */
function clientWentAway (request: FastifyRequest): boolean {
  return request.raw.destroyed && !request.raw.complete
}

function toErrorBody (error: FastifyError): ErrorBody {
  const code = isErrorCode(error.code) ? error.code : fastifyCodes[error.code]
  if (code !== undefined) {
    // Only VALIDATION_FAILED's message has a place for Fastify's words; the others' stand alone.
    const known = isErrorCode(error.code) ? error : code === 'VALIDATION_FAILED' ? apiError(code, error.message) : apiError(code)
    const statusCode = known.statusCode ?? 500
    const { methods, sessionId } = known as { methods?: unknown, sessionId?: unknown }
    return {
      statusCode,
      code,
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: known.message,
      ...(Array.isArray(methods) ? { methods: methods.map(String) } : {}),
      ...(typeof sessionId === 'string' ? { sessionId } : {})
    }
  }
  if (isDatabaseUnavailable(error) || isTransactionConflict(error)) return toErrorBody(apiError('SERVICE_UNAVAILABLE'))
  const statusCode = error.statusCode ?? 500
  if (statusCode >= 400 && statusCode < 500) {
    // A client error from a plugin (@fastify/static's): its catalogue code, or else its status and a stable code.
    const code = pluginStatusCodes[statusCode]
    if (code !== undefined) return toErrorBody(apiError(code))
    return { statusCode, code: 'VALIDATION_FAILED', error: STATUS_CODES[statusCode] ?? 'Error', message: error.message }
  }
  const internal = apiError('INTERNAL_ERROR')
  return { statusCode: 500, code: 'INTERNAL_ERROR', error: STATUS_CODES[500] ?? 'Error', message: internal.message }
}

function send (reply: FastifyReply, body: ErrorBody, retryAfterSeconds?: unknown) {
  // An error is this request's answer, now: a shared cache may keep a 404 or a 405 without
  // being told (RFC 9111 4.2.2), and would serve it to everyone (regression: a console asset a
  // rolling deploy had not yet brought to one instance stayed 404 after the deploy).
  reply.header('cache-control', 'no-store')
  if (typeof retryAfterSeconds === 'number') reply.header('retry-after', retryAfterSeconds)
  if (body.statusCode === 401) {
    reply.header('www-authenticate', invalidTokenCodes.has(body.code as ErrorCode) ? 'Bearer error="invalid_token"' : 'Bearer')
  }
  if (body.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  // RFC 9110 12.5.3: a 415 names the content codings a request body may have; bodies are read as sent.
  if (body.statusCode === 415) reply.header('accept-encoding', 'identity')
  return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}

/**
 * Fastify's `frameworkErrors` option: the errors its router raises before the error handler
 * is reached (regression: a 300-character id answered 414 FST_ERR_MAX_PARAM_LENGTH, outside
 * the catalogue). No hook runs for them, so the headers every answer carries, CORS's for the
 * listed origins (CORS_ORIGINS) and the drain's `Connection: close` included, are set here,
 * and a body still arriving is read on as request-framing's onSend would, only so far.
 */
export function frameworkErrorHandlerFor (allowedOrigins: ReadonlySet<string>, bodyLimit: number) {
  const maxPieces = maxBodyPiecesOf(bodyLimit)
  return function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    reply.headers(apiSecurityHeaders).headers(corsAnswerHeaders(request.headers.origin, allowedOrigins)).header(REQUEST_ID_HEADER, request.id)
    if (request.server.isWindingDown()) reply.header('connection', 'close')
    // Regression: closed at once instead (a POST to a malformed URL), while nginx was still
    // writing the body; it took the broken pipe for a failed instance.
    else if (bodyStillArriving(request.raw)) readOnBounded(request.raw, maxPieces)
    return send(reply, toErrorBody(error))
  }
}

// What Node's HTTP parser and its request timeouts raise, as catalogue codes: the statuses
// Node itself would answer (lib/_http_server.js); every other parser error is a 400.
const clientErrorCodes: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'BODY_TOO_LARGE'
}

/**
 * Fastify's `clientErrorHandler` option: what happens on a connection before any request
 * exists (a malformed request, headers past Node's 16 KB, a request that did not arrive
 * within HEADERS_TIMEOUT_SECONDS or REQUEST_TIMEOUT_SECONDS) is answered in the catalogue's
 * shape, after the answers to the requests pipelined before it, then the connection is
 * closed, as Node and Fastify do (regression: Fastify's own answers had no `code`).
 */
export function clientErrorHandler (this: FastifyInstance, error: ConnectionError, socket: Socket) {
  // A reset or already closed connection: nobody is left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  // Node times a new connection from its opening. One that has sent nothing yet (a browser's
  // or a pool's preconnect) asked nothing: an answer could be taken for that of the request
  // its client sends just then, so it is closed without one.
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && socket.bytesRead === 0) {
    socket.destroy()
    return
  }
  // A request answered before its body came (a 401 from a hook, a URL the router refused) had
  // its answer: a 408, or a 400 for a body it then got wrong, would be a second, taken by the
  // client for the next request's (regression: both).
  if (answeredBeforeItsBody(socket)) {
    socket.destroy()
    return
  }
  // A refusal answered, whose rest is being read, that times out (its client sends nothing more
  // and keeps the connection, or the server is shutting down) is over (regression: a silent
  // client kept it, and a shutdown waited for it past its timeout, exit 1).
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && lingering.has(socket)) {
    socket.destroy()
    return
  }
  // While earlier answers are awaited, and after the refusal, Node's parser, stuck in its
  // error, raises it again for every chunk that arrives.
  if (readOnRefused(socket, maxBodyPiecesOf(this.initialConfig.bodyLimit ?? 1_048_576))) return
  refusing.set(socket, 0)
  const body = toErrorBody(apiError(clientErrorCodes[error.code] ?? 'MALFORMED_REQUEST'))
  // A client's mistake or a slow client, not the service's: no stack trace.
  this.log.debug({ code: error.code, statusCode: body.statusCode }, 'request refused before any route')
  refuse(socket, rawAnswer(body), this.server.requestTimeout, error.code !== 'ERR_HTTP_REQUEST_TIMEOUT')
}

/**
 * Connections refused, whose refusal may wait for the answers before it, with how many pieces
 * of input came since: Node's parser, stuck in its error, raises it again for each.
 */
const refusing = new WeakMap<Socket, number>()

/** Connections refused and answered, half-closed while what their clients still send is read. */
const lingering = new WeakSet<Socket>()

/**
 * Whether `socket`'s refusal is under way: then a piece of input that arrives after it (a
 * request's rest, which nginx may still be writing) is read and dropped, up to `maxPieces`,
 * past which the connection is destroyed.
 */
function readOnRefused (socket: Socket, maxPieces: number): boolean {
  const pieces = refusing.get(socket)
  if (pieces === undefined) return false
  refusing.set(socket, pieces + 1)
  if (pieces + 1 > maxPieces) socket.destroy()
  return true
}

/**
 * Refuses the connection after the answers before the refusal, waiting for them at most
 * `waitMs` (REQUEST_TIMEOUT_SECONDS): a client that never reads them, and keeps sending, must
 * not hold the connection and its unsent answers (regression: held as long as it sent a byte
 * every few seconds). With `linger`, the connection is half-closed after the answer and what
 * the client is still sending is read and dropped (see readOnRefused) until it closes too, or
 * the wait ends.
 */
function refuse (socket: Socket, answer: string, waitMs: number, linger: boolean) {
  const deadline = setTimeout(() => socket.destroy(), waitMs)
  deadline.unref()
  socket.once('close', () => { clearTimeout(deadline) })
  answerLast(socket, answer, linger)
}

/**
 * Writes `answer` once the requests pipelined whole before it on `socket` have had theirs,
 * then closes. Node writes it at once: the earlier request ran and committed, and its client
 * got the refusal instead of its answer. Destroyed at once, a connection whose client was
 * still writing (a request's body) is reset: its client may never read the answer, and nginx
 * took the broken pipe for a failed instance (regression: one anonymous client with malformed
 * requests kept most requests at nginx's 503); so, lingering, it is only ended.
 */
function answerLast (socket: Socket, answer: string, linger: boolean) {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (inFlight != null && inFlight.req.complete && !socket.destroyed) {
    // Its finish hands the socket to the next response queued, if any, before its 'close'.
    inFlight.once('close', () => { answerLast(socket, answer, linger) })
    return
  }
  // Otherwise the refusal is this request's own (its body timed out, or was malformed). Node's
  // rule: never write into a response already begun.
  const answering = socket.writable && inFlight?.headersSent !== true
  if (!linger || !answering) {
    if (answering) socket.write(answer)
    socket.destroy()
    return
  }
  // The server's connections are half-open (allowHalfOpen): ended, this side still reads.
  lingering.add(socket)
  socket.once('end', () => socket.destroy())
  socket.end(answer)
}

function rawAnswer (body: ErrorBody): string {
  const json = JSON.stringify(body)
  const headers = {
    ...apiSecurityHeaders,
    'cache-control': 'no-store',
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    connection: 'close'
  }
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `HTTP/1.1 ${body.statusCode} ${body.error}\r\n${lines}\r\n${json}`
}

/**
 * What Node answers by itself, past the parser, in the catalogue's shape: an `Expect` other
 * than 100-continue (417 with no body), through the response Node gives, so that it takes its
 * turn among the answers pipelined with it and the connection goes on (regression: answered
 * on the socket, it waited for itself and held every answer after it), with the request id
 * the request would have had, its headers being read; CONNECT (no answer at all: the
 * connection dropped, this being no proxy), refused as a malformed request is.
 */
function nodeOwnAnswers (server: FastifyInstance['server']) {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const body = toErrorBody(apiError('EXPECTATION_FAILED'))
    const json = JSON.stringify(body)
    // A body announced and not read: the connection closes, as after Fastify's early answers,
    // lest a body that never comes earn the same request a second answer (a 408).
    response.writeHead(body.statusCode, {
      ...apiSecurityHeaders,
      [REQUEST_ID_HEADER]: requestIdOf(request),
      'cache-control': 'no-store',
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(json),
      ...(bodyStillArriving(request) ? { connection: 'close' } : {})
    })
    response.end(json)
  })
  server.on('connect', (_request: IncomingMessage, socket: Socket) => {
    // Node hands the socket over without its own handlers: an error while the refusal waits
    // for the answers before it (the client resets) would be uncaught, and end the process.
    socket.on('error', () => { socket.destroy() })
    refuse(socket, rawAnswer(toErrorBody(apiError('MALFORMED_REQUEST'))), server.requestTimeout, false)
  })
}

async function errorHandlerPlugin (app: FastifyInstance) {
  nodeOwnAnswers(app.server)
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (clientWentAway(request)) {
      request.log.debug({ reason: error.message }, 'the client went away before its request arrived')
      return send(reply, toErrorBody(apiError('REQUEST_TIMEOUT')))
    }
    const body = toErrorBody(error)
    let retryAfterSeconds = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds
    if (isDatabaseUnavailable(error)) {
      // Expected while the database is down: one line per request, no stack trace; an error
      // when it takes an operator (read-only, disk full), so that alerts on errors see it.
      request.log[databaseNeedsOperator(error) ? 'error' : 'warn']({ reason: lastLineOf(error.message) }, 'database unavailable')
    } else if (isTransactionConflict(error)) {
      // Rolled back whole, so nothing is lost; worth a warning all the same: frequent conflicts
      // mean two paths take the same locks in different orders.
      request.log.warn({ reason: lastLineOf(error.message) }, 'transaction conflict')
      retryAfterSeconds = CONFLICT_RETRY_AFTER_SECONDS
    } else if (body.statusCode >= 500 && body.code !== 'SERVICE_UNAVAILABLE') {
      request.log.error({ err: error }, 'request failed')
    }
    return send(reply, body, retryAfterSeconds)
  })

  // Unknown URLs count against the default per-ip limit too: probing for routes is not free.
  // (The metrics port's own small server has no rate limits.) A known path asked with a
  // method it does not take is 405 with Allow (RFC 9110 15.5.6), which Fastify's router
  // answers 404: the routes are mirrored, paths only, to look the path up.
  const known = knownPaths(app)
  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    const allowed = known.methodsAt(request.url)
    // A route of this method that found nothing (a static file's) is a plain 404 too.
    if (allowed.length === 0 || allowed.includes(request.method)) return send(reply, toErrorBody(apiError('NOT_FOUND')))
    return send(reply.header('allow', allowed.join(', ')), toErrorBody(apiError('METHOD_NOT_ALLOWED')))
  }
  if (app.hasDecorator('rateLimit')) app.setNotFoundHandler({ preHandler: app.rateLimit() }, notFound)
  else app.setNotFoundHandler(notFound)

  // What any route can answer besides its own, documented on each (429 is the rate limits'):
  // 400 from the router or the HTTP parser, 408 and 431 from the HTTP parser (clientErrorHandler), 417 from Node's check of Expect,
  // 500 and 503; where a body is sent, 403 from the CSRF check, 413 and 415. A route declares
  // a 403 only for a refusal of its own, which comes after its rate limits; the CSRF check's
  // comes before them, as the HTTP server's answers do.
  app.addHook('onRoute', route => {
    const response = route.schema?.response as Record<string, unknown> | undefined
    if (route.schema === undefined || response === undefined) return
    const withBody = [route.method].flat().some(method => !SAFE_METHODS.has(method))
    const csrfOnly = withBody && !(403 in response)
    route.schema.response = { ...errorResponses(400, 408, 417, 431, 500, 503, ...(withBody ? [403, 413, 415] : [])), ...response }
    const early: EarlyAnswers = { beforeLimits: [408, 417, 431, ...(csrfOnly ? [403] : [])], beforeRequest: [408, 431] }
    Object.assign(route.schema, { [EARLY_ANSWERS]: early })
  })
}

// Every route's path and methods as they are added, OPTIONS aside (the CORS plugin's
// preflight route takes every path, and answers only preflights).
function knownPaths (app: FastifyInstance) {
  const router = FindMyWay({ maxParamLength: MAX_PARAM_LENGTH })
  const methods = new Set<HTTPMethod>()
  app.addHook('onRoute', route => {
    for (const method of [route.method].flat()) {
      if (method === 'OPTIONS') continue
      router.on(method as HTTPMethod, route.url, () => {})
      methods.add(method as HTTPMethod)
    }
  })
  return {
    /** The methods `url` (its path) answers to, in a stable order; none for an unknown path. */
    methodsAt: (url: string): string[] => [...methods].filter(method => router.find(method, url.split('?')[0] ?? url) !== null).sort()
  }
}

export const errorHandler = fp(errorHandlerPlugin, { name: 'error-handler' })
