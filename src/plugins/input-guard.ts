// Refuses, before validation, input that would not be read or stored as sent: NUL, lone surrogates and malformed %-escapes anywhere in a request, JSON bodies that are content- or transfer-coded (chunked aside) or not UTF-8; and JSON bodies whose shape alone would cost more to parse than any route needs.
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

const refusal = () => apiError('VALIDATION_FAILED', 'text must be well-formed Unicode (UTF-8 in a body and in %-escapes), without NUL characters')

/** Decodes and checks in one pass; Fastify's own decoding put U+FFFD for every byte that is not UTF-8. */
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Far past any route's body: the deepest, a passkey's attestation, nests about 5 deep and holds a few dozen parts. */
export const MAX_JSON_DEPTH = 32
export const MAX_JSON_PARTS = 512

/** The characters that shape a JSON text: a string's start, brackets, commas. */
const shaping = /["[\]{},]/g

/**
 * Whether a JSON text nests deeper than MAX_JSON_DEPTH or holds more than MAX_JSON_PARTS
 * strings, arrays, objects and commas between items. Parsing costs by the part, not the byte:
 * 16 000 nested arrays in a 32 KB body took 4–9 ms of the event loop to parse, on any URL,
 * where this scan stops within a few hundred parts; its worst, a 32 KB string of escaped
 * quotes, takes about a millisecond (strings are skipped by search, not character by
 * character). A text that cannot be JSON (a bracket closed before it opened, a
 * string not closed) is left to the parser, which refuses it at once.
 */
export function exceedsJsonShape (text: string): boolean {
  let depth = 0
  let parts = 0
  shaping.lastIndex = 0
  let found: RegExpExecArray | null
  while ((found = shaping.exec(text)) !== null) {
    const char = found[0]
    if (char === ']' || char === '}') {
      if (--depth < 0) return false
      continue
    }
    if (++parts > MAX_JSON_PARTS || ((char === '[' || char === '{') && ++depth > MAX_JSON_DEPTH)) return true
    if (char === '"') {
      const end = closingQuote(text, found.index)
      if (end === -1) return false
      shaping.lastIndex = end + 1
    }
  }
  return false
}

/** The index of the quote that ends the string opened at `start`, or -1 (the parser will refuse it). */
function closingQuote (text: string, start: number): number {
  let quote = start
  for (;;) {
    quote = text.indexOf('"', quote + 1)
    if (quote === -1) return -1
    let backslashes = 0
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++
    if (backslashes % 2 === 0) return quote
  }
}

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
 * Whether a body comes with no transfer coding but chunked, which Node undoes (RFC 9112 7:
 * codings are case-insensitive, and a list). Node decodes no other: under `gzip, chunked` the
 * compressed bytes were read as JSON (a 400 about Unicode), under a made-up coding the body
 * was taken as plain. Refused as content codings are, 415 rather than RFC 9112 6.1's 501: the
 * caller, not the service, has to change what it sends (send the JSON as is), and a 5xx
 * would count as the service's failure and invite the same request again.
 */
function isChunkedAtMost (request: FastifyRequest): boolean {
  const coding = request.headers['transfer-encoding']
  if (coding === undefined) return true
  return coding.split(',').map(name => name.trim().toLowerCase()).filter(name => name !== '').join() === 'chunked'
}

/**
 * Whether the query string's %-escapes are all well-formed UTF-8 (RFC 3986 2.1, 2.5). The
 * query parser keeps a malformed one (`%E9`, or `%ED%A0%80`, a surrogate) as literal text,
 * another text than the one sent, where the router refuses the same in a path.
 */
function hasWellFormedQuery (request: FastifyRequest): boolean {
  const start = request.url.indexOf('?')
  if (start === -1) return true
  try {
    decodeURIComponent(request.url.slice(start + 1))
    return true
  } catch {
    return false
  }
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
    if (!isUncoded(request) || !isChunkedAtMost(request)) {
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
    if (exceedsJsonShape(text)) {
      done(apiError('VALIDATION_FAILED', `a JSON body may nest at most ${MAX_JSON_DEPTH} deep and hold at most ${MAX_JSON_PARTS} strings, arrays, objects and commas`), undefined)
      return
    }
    parseJson(request, text, done)
  })
  app.addHook('preValidation', (request: FastifyRequest, _reply, done) => {
    const refused = !hasWellFormedQuery(request) || containsRefused(request.params) || containsRefused(request.query) || containsRefused(request.body)
    done(refused ? refusal() : undefined)
  })
}

export const inputGuard = fp(inputGuardPlugin, { name: 'input-guard' })
