// Refuses, before validation, input that would not be read or stored as sent: NUL and lone surrogates anywhere in a request, JSON bodies that are content-coded or not UTF-8.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { apiError } from '../errors.js'

/** Whether `text` holds U+0000 or a lone surrogate (half of a UTF-16 pair). */
function isRefused (text: string): boolean {
  return text.includes('\u0000') || !text.isWellFormed()
}

/**
 * Whether `value` holds a refused string, as a value or a key, at any depth. Iterative, so a
 * deeply nested body (up to BODY_LIMIT_BYTES of brackets) cannot exhaust the stack.
 */
function containsRefused (value: unknown): boolean {
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const item = pending.pop()
    if (typeof item === 'string') {
      if (isRefused(item)) return true
    } else if (typeof item === 'object' && item !== null) {
      for (const [key, child] of Object.entries(item)) {
        if (isRefused(key)) return true
        pending.push(child)
      }
    }
  }
  return false
}

const refusal = () => apiError('VALIDATION_FAILED', 'text must be well-formed Unicode (UTF-8 in a body), without NUL characters')

/** Decodes and checks in one pass; Fastify's own decoding put U+FFFD for every byte that is not UTF-8. */
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Whether a body comes as sent, with no content coding but `identity` (RFC 9110 8.4: codings
 * are case-insensitive, and a list). The service decodes none: a gzip body was read as if
 * plain, its bytes refused as not UTF-8 (a 400 about Unicode), and a JSON body under a made-up
 * coding was taken as is; RFC 9110 15.5.16 answers both 415.
 */
function isUncoded (request: FastifyRequest): boolean {
  const coding = request.headers['content-encoding']
  if (coding === undefined) return true
  return coding.split(',').every(name => ['', 'identity'].includes(name.trim().toLowerCase()))
}

/**
 * PostgreSQL text cannot hold U+0000, so such a value would reach the database only to
 * fail there as a 500; C code further down truncates at it. A lone surrogate, or a byte that
 * is not UTF-8, would be stored as U+FFFD, another text than the one sent: two passwords
 * would be one, a name would change unseen. No field of this API has a use for either (OWASP
 * ASVS 5.1.4: validate the allowed characters): 400, before anything else.
 */
async function inputGuardPlugin (app: FastifyInstance) {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    if (!isUncoded(request)) {
      done(apiError('UNSUPPORTED_MEDIA_TYPE'), undefined)
      return
    }
    let text: string
    try {
      text = utf8.decode(body as Buffer)
    } catch {
      done(refusal(), undefined)
      return
    }
    parseJson(request, text, done)
  })
  app.addHook('preValidation', (request: FastifyRequest, _reply, done) => {
    const refused = containsRefused(request.params) || containsRefused(request.query) || containsRefused(request.body)
    done(refused ? refusal() : undefined)
  })
}

export const inputGuard = fp(inputGuardPlugin, { name: 'input-guard' })
