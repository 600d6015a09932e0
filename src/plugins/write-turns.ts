// One write per signed-in user at a time on an instance: the others wait their turn in memory.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'
import { SAFE_METHODS } from './cross-origin.js'

declare module 'fastify' {
  interface FastifyRequest {
    endTurn: (() => void) | null
  }
}

/** Thrown by `take` when the turn has not come within its wait. */
export class TurnNotReached extends Error {}

/**
 * Per key, one holder at a time; the others get their turn in the order they asked. A turn
 * that has not come within `waitMs` is given up: `take` throws TurnNotReached, and those
 * behind it wait for the holder only, so the waits never add up.
 */
export function turns () {
  const tails = new Map<string, Promise<void>>()
  return async function take (key: string, waitMs: number): Promise<() => void> {
    const ahead = tails.get(key)
    let end = () => {}
    const mine = new Promise<void>(resolve => { end = resolve })
    const tail = ahead === undefined ? mine : ahead.then(async () => await mine)
    tails.set(key, tail)
    let ended = false
    const release = () => {
      if (ended) return
      ended = true
      end()
      // Nothing is kept for a key once its last holder is done.
      tail.then(() => { if (tails.get(key) === tail) tails.delete(key) }).catch(() => {})
    }
    if (ahead !== undefined && !await reachedWithin(ahead, waitMs)) {
      release()
      throw new TurnNotReached()
    }
    return release
  }
}

async function reachedWithin (turn: Promise<void>, waitMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const reached = await Promise.race([turn.then(() => true), new Promise<false>(resolve => { timer = setTimeout(resolve, waitMs, false) })])
  clearTimeout(timer)
  return reached
}

/**
 * A user's writes take the user's row lock in the database (docs/accounts-and-mail.md: every transaction that
 * writes several of a user's rows takes it first). A burst of one user's writes, say a few
 * hundred profile changes sent at once, would each hold a pooled connection while waiting for
 * that lock, and every other user's request would wait for a connection. Taking turns here
 * first, a burst waits in memory and holds one connection at a time. Reads, and requests with
 * no signed-in caller, never wait. The turn ends as the answer is sent (onSend runs for every
 * answer, errors included; onResponse is a second chance that changes nothing if it came first).
 */
async function writeTurnsPlugin (app: FastifyInstance, { waitSeconds }: { waitSeconds: number }) {
  const take = turns()
  app.decorateRequest('endTurn', null)
  // A turn waits no longer than the database would for the user's row lock
  // (DATABASE_QUERY_TIMEOUT_SECONDS), and is refused the same way.
  const takeTurn = async (request: FastifyRequest) => {
    if (request.caller === null) return
    try {
      request.endTurn = await take(request.caller.userId, waitSeconds * 1000)
    } catch (error) {
      if (!(error instanceof TurnNotReached)) throw error
      request.log.warn('the user\'s earlier writes took longer than DATABASE_QUERY_TIMEOUT_SECONDS')
      throw apiError('SERVICE_UNAVAILABLE')
    }
  }
  const endTurn = async (request: FastifyRequest) => { request.endTurn?.() }
  const endTurnOnSend = async (request: FastifyRequest, _reply: unknown, payload: unknown) => {
    request.endTurn?.()
    return payload
  }
  // Only the routes that write carry the hooks: reads (the hot paths among them) pay nothing.
  app.addHook('onRoute', route => {
    if ([route.method].flat().every(method => SAFE_METHODS.has(method))) return
    route.preHandler = [takeTurn, ...[route.preHandler ?? []].flat()]
    route.onSend = [...[route.onSend ?? []].flat(), endTurnOnSend]
    route.onResponse = [...[route.onResponse ?? []].flat(), endTurn]
  })
}

export const writeTurns = fp(writeTurnsPlugin, { name: 'write-turns', dependencies: ['authenticate'] })
