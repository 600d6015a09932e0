// Request ids: an incoming X-Request-Id is kept (a proxy's or a caller's), else a UUID; every answer echoes it.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export const REQUEST_ID_HEADER = 'x-request-id'

// Visible ASCII only, bounded: it is logged with every line of the request and sent back.
const acceptable = /^[\x21-\x7e]{1,128}$/

/**
 * Fastify's `genReqId`: the caller's id when it is a sane token, so one id follows a request
 * through the proxy, this service and the logs; otherwise a new UUID.
 */
export function requestIdOf (request: IncomingMessage): string {
  const incoming = request.headers[REQUEST_ID_HEADER]
  return typeof incoming === 'string' && acceptable.test(incoming) ? incoming : randomUUID()
}

async function requestIdPlugin (app: FastifyInstance) {
  // onRequest runs for every request, 404s and refusals included.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id)
    done()
  })
}

export const requestId = fp(requestIdPlugin, { name: 'request-id' })
