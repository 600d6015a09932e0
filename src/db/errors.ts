// Telling the failures that pass (the database unreachable, not answering, read-only or out of resources, a transaction that lost a conflict) apart from every other.

// Prisma's codes for connection trouble: can't reach (P1001), timed out (P1002, P1008),
// connection closed (P1017), no pool connection in time (P2024), too many connections (P2037).
const prismaCodes = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037'])

// Driver adapter error kinds (@prisma/driver-adapter-utils) for the same situations.
const adapterKinds = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections'])

// Socket errors from `pg` that Prisma passes on unconverted.
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH'])

// PostgreSQL SQLSTATEs: class 08 (connection exception), 57P01–57P03 (shutting down, crashed,
// starting up), 57P05 (connection ended as idle too long), 57014 (statement cancelled by a
// timeout), 25P03 and 25P04 (transaction ended by idle_in_transaction_session_timeout or
// transaction_timeout, rolled back whole); 25006 (a read-only transaction asked to write: a
// failover left the pool on a standby, or the primary came back read-only); 53000–53300
// (insufficient resources, disk full, out of memory, too many connections). Not 53400
// (configuration limit exceeded, e.g. temp_file_limit): the same query would meet it again.
const sqlStates = /^(08...|57P0[1235]|57014|25P0[34]|25006|53[0-3]00)$/

// Of those, the ones an operator must mend: read-only, disk full, out of memory.
const operatorStates = /^(25006|53100|53200)$/

// 55000 (object not in prerequisite state) is an outage only as a refused connection: the
// database's connections turned off for maintenance (ALTER DATABASE … ALLOW_CONNECTIONS false).
const refusedConnection = (code: unknown, message: unknown) =>
  code === '55000' && typeof message === 'string' && /is not currently accepting connections/.test(message)

// What `pg` and `pg-pool` say when a connection dies, cannot be opened in time, or a
// query outlives `query_timeout`; Prisma rethrows these plain Errors as they are.
const driverMessages = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error)/

// Prisma's P2028 for an interactive transaction that could not get a connection within its
// maxWait, or outlived its timeout (both set from the database timeouts, see createPrisma).
// P2028 also reports a transaction used after it closed, a bug: only these two messages pass.
const transactionTimeouts = /Unable to start a transaction in the given time|cannot be executed on an expired transaction/

// A deadlock's victim (40P01) or a serialization failure (40001): Prisma's P2034, the adapter's
// kind, or pg's SQLSTATE on the hot paths' statements.
const conflictCodes = new Set(['P2034', '40001', '40P01'])

interface ErrorLike {
  code?: unknown
  kind?: unknown
  message?: unknown
  cause?: unknown
  meta?: { driverAdapterError?: unknown }
  /** AggregateError: one failure per address tried (localhost as ::1 and 127.0.0.1). */
  errors?: unknown
}

/** Prisma's messages start with a code excerpt; the last line says what happened. */
export function lastLineOf (message: string): string {
  return message.trim().split('\n').at(-1) ?? ''
}

/** What went wrong, in one line without a stack: for the warnings of an outage that passes. */
export function reasonOf (error: unknown): string {
  return lastLineOf(error instanceof Error ? error.message : String(error))
}

/**
 * True when `error` (or anything in its cause chain) says the database cannot be reached,
 * stopped answering, refuses writes (read-only) or ran out of resources: a condition that
 * passes, to be answered with 503 and Retry-After rather than 500. Constraint violations,
 * bad queries and bugs are never matched.
 */
export function isDatabaseUnavailable (error: unknown): boolean {
  return anyInChain(error, ({ code, kind, message }) =>
    // A SQLSTATE sits in `code` on pg's errors and on the adapter's `kind: "postgres"` ones.
    (typeof code === 'string' && (prismaCodes.has(code) || socketCodes.has(code) || sqlStates.test(code))) ||
    refusedConnection(code, message) ||
    (typeof kind === 'string' && adapterKinds.has(kind)) ||
    (typeof message === 'string' && (driverMessages.test(message) || (code === 'P2028' && transactionTimeouts.test(message)))))
}

/**
 * True when `error` is an outage (see isDatabaseUnavailable) that will not pass by itself: the
 * database read-only (a pool left on a standby, a primary back read-only), its disk full, its
 * memory exhausted. Still a 503 to the client; to the operator, an error, not a warning.
 */
export function databaseNeedsOperator (error: unknown): boolean {
  return anyInChain(error, ({ code }) => typeof code === 'string' && operatorStates.test(code))
}

/**
 * True when `error` says the transaction lost a conflict with another and was rolled back
 * whole: nothing was written, and the same request sent again succeeds.
 */
export function isTransactionConflict (error: unknown): boolean {
  return anyInChain(error, ({ code, kind }) =>
    (typeof code === 'string' && conflictCodes.has(code)) || kind === 'TransactionWriteConflict')
}

/** Whether `test` holds for `error` or anything in its cause chain. */
function anyInChain (error: unknown, test: (error: ErrorLike) => boolean): boolean {
  const seen = new Set<unknown>()
  const pending: unknown[] = [error]
  while (pending.length > 0) {
    const current = pending.pop()
    if (typeof current !== 'object' || current === null || seen.has(current)) continue
    seen.add(current)
    const like = current as ErrorLike
    if (test(like)) return true
    pending.push(like.cause, like.meta?.driverAdapterError, ...(Array.isArray(like.errors) ? like.errors : []))
  }
  return false
}
