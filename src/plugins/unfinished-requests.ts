// At shutdown, connections whose request never arrives whole are timed out, as they are while the server runs.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** How long, once the server closes, a request still arriving has to arrive whole. */
const ARRIVAL_GRACE_MS = 1000
/** How often that is looked at: the grace ends within this much of its second. */
const CHECK_INTERVAL_MS = 100

/**
 * Node stops enforcing HEADERS_TIMEOUT_SECONDS and REQUEST_TIMEOUT_SECONDS once the server
 * closes, so a client that keeps a request's headers or body unfinished would hold the
 * shutdown until SHUTDOWN_TIMEOUT_SECONDS and turn it into exit 1 (regression). From the
 * close, a request has a second to arrive whole; then its connection is answered 408 and
 * closed through the server's own timeout path (clientErrorHandler). Requests that have
 * arrived are left to finish.
 */
async function unfinishedRequestsPlugin (app: FastifyInstance) {
  const connections = new Set<Socket>()
  app.server.on('connection', (socket: Socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })
  // Still arriving: no request being answered (its first bytes only, or none yet), or one
  // whose body has not all come. Node's own bookkeeping, read only at shutdown: the answer
  // the connection is writing, and its request (the error handler reads it the same way).
  const arriving = () => [...connections].filter(socket => {
    const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    return answering == null || !answering.req.complete
  })
  const timeOut = (socket: Socket) => {
    const error = Object.assign(new Error('request not received before shutdown'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' })
    app.server.emit('clientError', error, socket)
  }

  app.addHook('preClose', async () => {
    if (!app.server.listening) return
    // When each connection was first seen still arriving, from the close on.
    const arrivingSince = new Map<Socket, number>()
    const check = () => {
      const now = Date.now()
      const current = new Set(arriving())
      for (const socket of arrivingSince.keys()) if (!current.has(socket)) arrivingSince.delete(socket)
      for (const socket of current) {
        const since = arrivingSince.get(socket)
        if (since === undefined) arrivingSince.set(socket, now)
        else if (now - since >= ARRIVAL_GRACE_MS) timeOut(socket)
      }
    }
    check()
    const checks = setInterval(check, CHECK_INTERVAL_MS).unref()
    app.server.once('close', () => clearInterval(checks))
  })
}

export const unfinishedRequests = fp(unfinishedRequestsPlugin, { name: 'unfinished-requests' })
