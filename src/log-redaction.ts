// Secrets never reach the log, whatever the level: credentials in headers, bodies, errors and query strings; and what a client sent in a request line reaches it printable.
import type { FastifyRequest } from 'fastify'
import { stdSerializers, type LoggerOptions, type SerializedError } from 'pino'

const CENSOR = '[redacted]'

/**
 * Keys whose values are never logged, at the top of a logged object or one level down
 * (`{ body: { password } }`, an error's own properties). A TOTP `code` is not listed: it dies
 * within a minute and is single use, and `code` is also every error's catalogue code, which
 * logs must show.
 */
const secretKeys = new Set([
  'password', 'currentPassword', 'newPassword',
  'accessToken', 'refreshToken', 'token',
  'mfaToken', 'recoveryCode', 'recoveryCodes', 'secret', 'otpauthUri',
  // Not a credential, but whoever has a device's token and the password signs in untold.
  'deviceToken'
])

/**
 * A copy to censor: an error stays an error (prototype, message and stack) for pino's err
 * serializer, and a frozen object's copy is not frozen.
 */
function copyOf (value: object): object {
  const copy = Object.create(Object.getPrototypeOf(value)) as object
  for (const [key, property] of Object.entries(Object.getOwnPropertyDescriptors(value))) {
    Object.defineProperty(copy, key, { ...property, configurable: true, ...('value' in property ? { writable: true } : {}) })
  }
  return copy
}

/** Arrays and binary data are walked by no path: their elements sit a level deeper than any key checked. */
function isRecord (value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)
}

function censoredKeysOf<T extends object> (value: T, censorNested: boolean): T {
  let copy: object | undefined
  for (const key of Object.keys(value)) {
    const field: unknown = (value as Record<string, unknown>)[key]
    const clean = secretKeys.has(key) ? CENSOR : censorNested && isRecord(field) ? censoredKeysOf(field, false) : field
    // Defined, not assigned: the copy's property may be a getter without a setter.
    if (clean !== field) Object.defineProperty(copy ??= copyOf(value), key, { value: clean, enumerable: true, writable: true, configurable: true })
  }
  return (copy ?? value) as T
}

/** The logged object, or a copy with every secret two levels deep replaced; the original is never changed. */
export function withoutSecrets<T extends object> (logged: T): T {
  return censoredKeysOf(logged, true)
}

// Control characters (C0 and C1), the line and paragraph separators and the bidirectional
// controls. Node reads a header's and a path's bytes above 0x7f as Latin-1, so a client can
// send any of the C1 controls, which JSON leaves as they are: a terminal acts on them (0x9b
// opens an escape sequence) and a reader splitting lines on U+0085 or U+2028 cuts a JSON line.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
// The same, but for tabs and line feeds, which a text of several lines holds and JSON escapes.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const escaped = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`

/** What a client sent, one line, with each unprintable character written as its escape (`\u009b`). */
export function printable<T extends string | undefined> (text: T): T
export function printable (text: string | undefined): string | undefined {
  return text?.replace(UNPRINTABLE, escaped)
}

/** A text of several lines that may quote what a user typed (a mail's): the same, its tabs and line feeds kept. */
export function printableText (text: string): string {
  return text.replace(UNPRINTABLE_IN_TEXT, escaped)
}

// What of a request line's client strings is logged: a host name has at most 253 characters
// and a port, and no route's path comes near 512; longer ones are cut (regression: a 15 KB Host
// header of C1 bytes, each escaped, made a 105 KB line, however the request was answered).
const MAX_LOGGED = { url: 512, host: 270, version: 64 }

/** `text` cut to `max` characters (a cut marked with '…'), then made printable. */
function bounded (text: string, max: number): string {
  return printable(text.length > max ? `${text.slice(0, max)}…` : text)
}

/**
 * Fastify's request line, but with the URL's path alone: a query string can carry what a log
 * must not (the token of a mailed link followed to the service itself, a search term). The
 * client's strings are made printable and bounded. Other objects logged as `req` pass unchanged.
 */
function requestLine (request: FastifyRequest): Record<string, unknown> {
  // A request is logged by Fastify; anything else under `req` by the service's own code.
  if (!('raw' in request)) return request as Record<string, unknown>
  const { method, url, host, ip, headers, socket } = request
  const version = headers['accept-version']
  return {
    method,
    url: bounded(url.split('?', 1)[0] as string, MAX_LOGGED.url),
    version: typeof version === 'string' ? bounded(version, MAX_LOGGED.version) : version,
    host: bounded(host, MAX_LOGGED.host),
    remoteAddress: ip,
    remotePort: socket?.remotePort
  }
}

/**
 * The fields of an error that quote values: Node's URL errors (ERR_INVALID_URL, from any client
 * handed a URL: SMTP, Redis) carry the whole URL in `input`, a password with it; PostgreSQL's
 * errors carry the row or the key in `detail` ("Failing row contains (ada@example.com,
 * $argon2id$…)"), the statement's context in `where` and `internalQuery`, and Prisma's adapter
 * the driver's message, which may quote a value ("invalid input syntax for type uuid: …"), in
 * `originalMessage`. An error's own `message` is kept: it says what went wrong.
 */
const QUOTING_FIELDS = new Set(['input', 'detail', 'where', 'internalQuery', 'originalMessage'])

/**
 * pino's error serializer, without the fields that quote values (QUOTING_FIELDS). Dropped from
 * the error, from errors serialized inside it, and from a `cause` that is not an error (pino
 * writes an error cause's message and stack only, never its properties), as deep as Prisma
 * nests the driver's error (`meta.driverAdapterError.cause`).
 */
function errorLine (error: Error): SerializedError {
  return withoutQuotes(stdSerializers.err(error), 5) as SerializedError
}

/** `value` without QUOTING_FIELDS down to `depth` levels: a copy where one was dropped (a non-error is the logged object itself). */
function withoutQuotes (value: unknown, depth: number): unknown {
  if (depth === 0) return value
  if (Array.isArray(value)) {
    const items = value.map(item => withoutQuotes(item, depth - 1))
    return items.some((item, i) => item !== value[i]) ? items : value
  }
  if (!isRecord(value)) return value
  let copy: object | undefined
  for (const [key, field] of Object.entries(value)) {
    const clean = QUOTING_FIELDS.has(key) ? undefined : withoutQuotes(field, depth - 1)
    // Defined, not assigned: the copy's property may be a getter without a setter.
    if (clean !== field) Object.defineProperty(copy ??= copyOf(value), key, { value: clean, enumerable: true, writable: true, configurable: true })
  }
  if (copy !== undefined) for (const key of QUOTING_FIELDS) Reflect.deleteProperty(copy, key)
  return copy ?? value
}

/**
 * pino's own `redact` with wildcard paths (`*.password`) parses every path again for every
 * value it writes: 11–16 µs per request line and 1.8 µs per request's child logger on the
 * benchmark's machine, against 4.5 µs and 0.3 µs this way (docs/benchmarks.md). So the secret
 * keys are censored here, once per line, before pino's serializers run (pino's err serializer
 * copies an error's own properties, censored already); pino itself redacts only the
 * credential headers, by the paths that name them. Child loggers' bindings are not censored:
 * the service binds only request ids and component names.
 */
export const logRedaction = {
  redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'], censor: CENSOR },
  formatters: { log: withoutSecrets },
  serializers: { req: requestLine, err: errorLine }
} satisfies Pick<LoggerOptions, 'redact' | 'formatters' | 'serializers'>
