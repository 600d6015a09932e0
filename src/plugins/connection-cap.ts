// A cap on the connections the API's port holds at once (MAX_CONNECTIONS): past it a new one is
// closed unanswered, while every connection already open is served. Without it, one client
// holding connections open took the process's last file descriptors, and the next file the
// process opened (a once-a-second read of its own memory) failed and stopped it.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** How often at most the refusals are logged: a client refused in a loop must not flood the log. */
const LOG_EVERY_MS = 10_000

async function connectionCapPlugin (app: FastifyInstance, { maxConnections }: { maxConnections: number }) {
  app.server.maxConnections = maxConnections
  let refused = 0
  let loggedAt = -Infinity
  app.server.on('drop', () => {
    refused += 1
    const at = Date.now()
    if (at - loggedAt < LOG_EVERY_MS) return
    app.log.warn({ refused, maxConnections }, 'connections refused: MAX_CONNECTIONS are open')
    refused = 0
    loggedAt = at
  })
}

export const connectionCap = fp(connectionCapPlugin, { name: 'connection-cap' })
