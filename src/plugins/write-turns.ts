// One write per signed-in user at a time on an instance: the others wait their turn in memory.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { SAFE_METHODS } from './cross-origin.js'

declare module 'fastify' {
  interface FastifyRequest {
    endTurn: (() => void) | null
  }
}

/** Per key, one holder at a time; the others get their turn in the order they asked. */
export function turns () {
  const tails = new Map<string, Promise<void>>()
  return async function take (key: string): Promise<() => void> {
    const before = tails.get(key) ?? Promise.resolve()
    let end = () => {}
    const mine = new Promise<void>(resolve => { end = resolve })
    const tail = before.then(async () => await mine)
    tails.set(key, tail)
    await before
    let ended = false
    return () => {
      if (ended) return
      ended = true
      end()
      // Nothing is kept for a key once its last holder is done.
      if (tails.get(key) === tail) tails.delete(key)
    }
  }
}

/**
 * A user's writes take the user's row lock in the database (README: every transaction that
 * writes several of a user's rows takes it first). A burst of one user's writes, say a few
 * hundred profile changes sent at once, would each hold a pooled connection while waiting for
 * that lock, and every other user's request would wait for a connection. Taking turns here
 * first, a burst waits in memory and holds one connection at a time. Reads, and requests with
 * no signed-in caller, never wait. The turn ends as the answer is sent (onSend runs for every
 * answer, errors included; onResponse is a second chance that changes nothing if it came first).
 */
async function writeTurnsPlugin (app: FastifyInstance) {
  const take = turns()
  app.decorateRequest('endTurn', null)
  const takeTurn = async (request: FastifyRequest) => {
    if (request.caller !== null) request.endTurn = await take(request.caller.userId)
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
