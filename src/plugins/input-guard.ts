// Refuses NUL characters anywhere in a request's body, query string or parameters, before validation.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'

/**
 * Whether `value` holds a string with U+0000, at any depth. Iterative, so a deeply nested
 * body (up to BODY_LIMIT_BYTES of brackets) cannot exhaust the stack.
 */
function containsNul (value: unknown): boolean {
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (typeof item === 'string') {
      if (item.includes('\u0000')) return true
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, child] of Object.entries(item)) {
        if (key.includes('\u0000')) return true
        pending.push(child)
      }
    }
  }
  return false
}

/**
 * PostgreSQL text cannot hold U+0000, so such a value would reach the database only to
 * fail there as a 500; C code further down truncates at it. No field of this API has a
 * use for it (OWASP ASVS 5.1.4: validate the allowed characters): 400, before anything else.
 */
async function inputGuardPlugin (app: FastifyInstance) {
  app.addHook('preValidation', (request: FastifyRequest, _reply, done) => {
    const refused = containsNul(request.params) || containsNul(request.query) || containsNul(request.body)
    done(refused ? apiError('VALIDATION_FAILED', 'text must not contain NUL characters') : undefined)
  })
}

export const inputGuard = fp(inputGuardPlugin, { name: 'input-guard' })
