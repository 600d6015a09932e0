// At shutdown, connections whose request never arrives whole are timed out, as they are while the server runs.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** How long, once the server closes, a request still arriving has to arrive whole. */
const ARRIVAL_GRACE_MS = 1000

/**
 * Node stops enforcing HEADERS_TIMEOUT_SECONDS and REQUEST_TIMEOUT_SECONDS once the server
 * closes, so a client that keeps a request's headers or body unfinished would hold the
 * shutdown until SHUTDOWN_TIMEOUT_SECONDS and turn it into exit 1 (regression). From the
 * close, a request has a second to arrive whole; then its connection is answered 408 and
 * closed through the server's own timeout path (clientErrorHandler). Requests that have
 * arrived are left to finish.
 */
async function unfinishedRequestsPlugin (app: FastifyInstance) {
  // Each open connection, with the request it is answering (undefined between requests).
  const requestOf = new Map<Socket, IncomingMessage | undefined>()
  app.server.on('connection', (socket: Socket) => {
    requestOf.set(socket, undefined)
    socket.once('close', () => requestOf.delete(socket))
  })
  app.server.on('request', (request: IncomingMessage, response) => {
    requestOf.set(request.socket, request)
    response.once('finish', () => { if (requestOf.has(request.socket)) requestOf.set(request.socket, undefined) })
  })

  const arriving = () => [...requestOf].filter(([, request]) => request?.complete !== true).map(([socket]) => socket)
  const timeOut = (socket: Socket) => {
    const error = Object.assign(new Error('request not received before shutdown'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })
    app.server.emit('clientError', error, socket)
  }

  app.addHook('preClose', async () => {
    if (!app.server.listening) return
    // Idle connections are closed by the server itself; what is still arriving at two
    // successive checks has had at least ARRIVAL_GRACE_MS.
    let late = new Set<Socket>()
    const check = setInterval(() => {
      const now = arriving()
      for (const socket of now) if (late.has(socket)) timeOut(socket)
      late = new Set(now)
    }, ARRIVAL_GRACE_MS).unref()
    app.server.once('close', () => clearInterval(check))
  })
}

export const unfinishedRequests = fp(unfinishedRequestsPlugin, { name: 'unfinished-requests' })
