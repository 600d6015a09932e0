// How a request arrives over HTTP/1.1: with a Host header, and its body in a bounded number of pieces, whether the service reads it or an early answer leaves it to be read on.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { finished, Transform, type Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'

/**
 * How many pieces any body may come in, whatever the body limit. Each piece (a chunk of a
 * chunked body, or one read of the socket) costs the event loop the same whatever its size:
 * 32 000 one-byte chunks, within the default body limit, cost about 60 ms. A client sends a
 * JSON body in one write, or a few; split by the network into 536-byte TCP segments (the
 * least every IPv4 host must take, RFC 9293 3.7.1), each read on its own, the default 32 KiB
 * limit makes 62.
 */
const MIN_BODY_PIECES = 1024
/** Past MIN_BODY_PIECES, one piece per this many bytes of the body limit: less than a segment of that least size. */
const BYTES_PER_PIECE = 512

/** How many pieces a body of at most `bodyLimit` bytes may come in. */
export function maxBodyPiecesOf (bodyLimit: number): number {
  return Math.max(MIN_BODY_PIECES, Math.ceil(bodyLimit / BYTES_PER_PIECE))
}

/** Whether `request` announces a body (RFC 9112 6.3): a transfer coding, or a length above 0. */
function announcesBody (request: IncomingMessage): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0
}

/**
 * Whether `request` announced a body that has not all arrived. Node marks a request complete
 * once its body is in; an injected request (light-my-request) has no such mark: it arrives whole.
 */
export function bodyStillArriving (request: IncomingMessage): boolean {
  return announcesBody(request) && request.complete === false
}

/**
 * `payload` as it is read, refused (413) past `maxPieces` pieces. It is piped only when the
 * body parser starts reading: a body nobody reads is left to `readOnBounded` (below). The
 * refusal stops the piping; the rest, if more comes, is read on as any unread body is.
 */
function countingPieces (payload: Readable, maxPieces: number): Transform {
  let pieces = 0
  const counted = new Transform({
    transform (chunk: Buffer, _encoding, next) {
      pieces += 1
      next(pieces > maxPieces ? apiError('BODY_TOO_LARGE') : null, chunk)
    }
  })
  counted.once('resume', () => {
    // A client that hangs up mid-body ends the read with its error, as it would unpiped.
    finished(payload, error => { if (error != null) counted.destroy(error) })
    payload.pipe(counted)
  })
  return counted
}

/** Connections whose request in progress was answered before its body was all in: that request. */
const answeredEarly = new WeakMap<Socket, IncomingMessage>()

/**
 * Whether the request in progress on `socket` has had its answer, its body still arriving: a
 * request timeout then closes the connection without a second answer.
 */
export function answeredBeforeItsBody (socket: Socket): boolean {
  // Its body may have ended in the very chunk the parser is now failing on, a request after it:
  // 'end' comes later, `complete` at once (regression: that request's answer was lost).
  return answeredEarly.get(socket)?.complete === false
}

/**
 * Reads on the rest of a body its answer came before, as Node would to keep the connection for
 * the next request, but only so far: past `maxPieces` more pieces the connection is destroyed.
 * Closing at once instead broke the proxy in front: nginx, still writing a body the service
 * would have read on, saw a broken pipe, answered 502 and took the instance for down (a few
 * anonymous 401s with 30 KB bodies took every instance out).
 */
export function readOnBounded (request: IncomingMessage, maxPieces: number): void {
  let pieces = 0
  answeredEarly.set(request.socket, request)
  request.once('end', () => { answeredEarly.delete(request.socket) })
  request.on('data', () => {
    pieces += 1
    if (pieces > maxPieces) request.socket.destroy()
  })
}

/** An HTTP/1.1 request without Host (RFC 9112 3.2: answered 400), which Node would refuse with a bare 400 of its own. */
function lacksHost (request: FastifyRequest): boolean {
  return request.raw.httpVersion === '1.1' && request.headers.host === undefined
}

/**
 * Node reads a body no route reads (a GET's, a 404's, one refused 401 or 429 by a hook) to its
 * end, piece by piece, to keep the connection for the next request: a body of a million
 * one-byte chunks sent to GET /health cost 1.5 s of the event loop. Such a body is read on
 * only so far, and a body being read is refused past a bounded number of pieces.
 */
async function requestFramingPlugin (app: FastifyInstance, settings: { bodyLimit: number }) {
  const maxPieces = maxBodyPiecesOf(settings.bodyLimit)
  // Registered after request-id and security-headers: the refusal carries their headers.
  app.addHook('onRequest', (request, _reply, done) => {
    done(lacksHost(request) ? apiError('MALFORMED_REQUEST') : undefined)
  })
  app.addHook('preParsing', (request, _reply, payload, done) => {
    done(null, announcesBody(request.raw) ? countingPieces(payload, maxPieces) : payload)
  })
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (bodyStillArriving(request.raw)) readOnBounded(request.raw, maxPieces)
    done(null, payload)
  })
}

export const requestFraming = fp(requestFramingPlugin, { name: 'request-framing', dependencies: ['error-handler', 'request-id', 'security-headers'] })
