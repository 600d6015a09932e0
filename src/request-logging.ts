// What Fastify logs about each request: one line when it completes, the arrival only when debugging.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/**
 * Fastify's default writes two lines per request at `info`, on arrival and on completion,
 * and each costs a serialisation, the redaction and a write: on the benchmark's machine
 * the pair took a third of the throughput of `GET /users/me` (docs/benchmarks.md). Here the
 * completion line carries what the arrival line did (method, url, client address) with the
 * status and the time, so `info` gets one line per request; the arrival line stays at
 * `debug`, for finding the request a process was working on when it hung or died.
 * A route's own `logLevel` still applies to both: the probes' lines stay out of `info`.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error !== null && error !== undefined) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}
