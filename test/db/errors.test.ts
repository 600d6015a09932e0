// Which failures pass (the database unavailable, a lost conflict: 503) and which are ours (500) or the client's.
import t from 'tap'
import { isDatabaseUnavailable, isTransactionConflict } from '../../src/db/errors.js'

const withCause = (message: string, cause: unknown) => Object.assign(new Error(message), { cause })

t.test('connection trouble, in the shapes Prisma, the adapter and pg report it', async t => {
  const cases: Record<string, unknown> = {
    'P1001 (can\'t reach)': Object.assign(new Error('Can\'t reach database server'), { code: 'P1001' }),
    'P2024 (pool timeout)': { code: 'P2024', message: 'Timed out fetching a new connection' },
    'adapter kind in meta': { code: 'P9999', meta: { driverAdapterError: { name: 'DriverAdapterError', cause: { kind: 'ConnectionClosed' } } } },
    'socket error deep in the causes': withCause('query failed', withCause('wrapped', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))),
    'AggregateError (every address refused)': new AggregateError([Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })], 'connect failed'),
    'server shutting down (57P01)': { kind: 'postgres', code: '57P01', message: 'terminating connection due to administrator command' },
    'connection exception class 08': Object.assign(new Error('connection failure'), { code: '08006', severity: 'FATAL' }),
    'statement timeout (57014)': { code: '57014', message: 'canceling statement due to statement timeout' },
    'connections turned off (55000)': Object.assign(new Error('database "auth" is not currently accepting connections'), { code: '55000', severity: 'FATAL' }),
    'pg: connection terminated': new Error('Connection terminated unexpectedly'),
    'pg: connect timeout': withCause('Connection terminated due to connection timeout', new Error('x')),
    'pg-pool: connect timeout': new Error('timeout exceeded when trying to connect'),
    'pg: query_timeout': new Error('Query read timeout')
  }
  for (const [name, error] of Object.entries(cases)) t.ok(isDatabaseUnavailable(error), name)
})

t.test('a database that refuses writes or ran out of resources passes too: 503, not a bug', async t => {
  const cases: Record<string, unknown> = {
    'read-only (25006), from pg': Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006', severity: 'ERROR' }),
    'read-only (25006), from the adapter in meta': { code: 'P2010', meta: { driverAdapterError: { name: 'DriverAdapterError', cause: { kind: 'postgres', code: '25006', message: 'cannot execute UPDATE in a read-only transaction' } } } },
    'insufficient resources (53000)': { code: '53000', message: 'insufficient resources' },
    'disk full (53100)': withCause('query failed', { kind: 'postgres', code: '53100', message: 'could not extend file: No space left on device' }),
    'out of memory (53200)': Object.assign(new Error('out of memory'), { code: '53200' }),
    'too many connections (53300)': Object.assign(new Error('sorry, too many clients already'), { code: '53300', severity: 'FATAL' }),
    'cannot connect now (57P03)': Object.assign(new Error('the database system is starting up'), { code: '57P03', severity: 'FATAL' }),
    'idle session timeout (57P05)': Object.assign(new Error('terminating connection due to idle-session timeout'), { code: '57P05', severity: 'FATAL' }),
    'idle in transaction timeout (25P03)': Object.assign(new Error('terminating connection due to idle-in-transaction timeout'), { code: '25P03', severity: 'FATAL' }),
    'transaction timeout (25P04)': Object.assign(new Error('canceling statement due to transaction timeout'), { code: '25P04' })
  }
  for (const [name, error] of Object.entries(cases)) {
    t.ok(isDatabaseUnavailable(error), name)
    t.notOk(isTransactionConflict(error), `${name}: not a conflict`)
  }
  const others: Record<string, unknown> = {
    'configuration limit exceeded (53400): the same query meets it again': { code: '53400', message: 'temporary file size exceeds temp_file_limit' },
    'another state of class 25 (25001, a bug)': { code: '25001', message: 'SET TRANSACTION ISOLATION LEVEL must be called before any query' },
    'database dropped (57P04)': { code: '57P04', message: 'database dropped' },
    'a code that only starts like one': { code: '250060' }
  }
  for (const [name, error] of Object.entries(others)) t.notOk(isDatabaseUnavailable(error), name)
})

t.test('everything else is not an outage', async t => {
  const cyclic: { message: string, cause?: unknown } = { message: 'loop' }
  cyclic.cause = cyclic
  const cases: Record<string, unknown> = {
    'unique violation (P2002)': { code: 'P2002', meta: { driverAdapterError: { cause: { kind: 'UniqueConstraintViolation' } } } },
    'a postgres error of another class': { kind: 'postgres', code: '23505', message: 'duplicate key' },
    '55000 for anything but a refused connection': { code: '55000', message: 'cannot execute this on a temporary table' },
    'a bug': new TypeError('cannot read properties of undefined'),
    'a catalogue error': Object.assign(new Error('Invalid credentials'), { code: 'AUTH_INVALID_CREDENTIALS', statusCode: 401 }),
    'a cycle of causes': cyclic,
    'not an object': 'Connection terminated',
    nothing: undefined
  }
  for (const [name, error] of Object.entries(cases)) t.notOk(isDatabaseUnavailable(error), name)
})

t.test('an interactive transaction that ran out of time is an outage; a transaction misused is a bug', async t => {
  const p2028 = (message: string, meta: object = {}) => Object.assign(new Error(message), { code: 'P2028', meta, clientVersion: '7.10.0' })
  const timedOut: Record<string, unknown> = {
    'no connection within maxWait': p2028('Transaction API error: Unable to start a transaction in the given time.'),
    'past its timeout': p2028('\nInvalid `prisma.$executeRaw()` invocation:\n\n\nTransaction API error: A query cannot be executed on an expired transaction. The timeout for this transaction was 10000 ms, however 10012 ms passed since the start of the transaction. Consider increasing the interactive transaction timeout or doing less work in the transaction.', { operation: 'query', timeout: 10000, timeTaken: 10012 }),
    'past its timeout, at the commit': p2028('Transaction API error: A commit cannot be executed on an expired transaction. The timeout for this transaction was 10000 ms, however 10003 ms passed since the start of the transaction.')
  }
  for (const [name, error] of Object.entries(timedOut)) {
    t.ok(isDatabaseUnavailable(error), name)
    t.notOk(isTransactionConflict(error), `${name}: not a conflict`)
  }
  const bugs: Record<string, unknown> = {
    'a query after the commit': p2028('Transaction API error: Transaction already closed: A query cannot be executed on a committed transaction.'),
    'a query after the rollback': p2028('Transaction API error: Transaction already closed: A query cannot be executed on a transaction that was rolled back.'),
    'an unknown transaction': p2028('Transaction API error: Transaction not found. Transaction ID is invalid, refers to an old closed transaction Prisma doesn\'t have information about anymore, or was obtained before disconnecting.'),
    'the timeout message under another code': Object.assign(new Error('Unable to start a transaction in the given time.'), { code: 'P2010' })
  }
  for (const [name, error] of Object.entries(bugs)) t.notOk(isDatabaseUnavailable(error), name)
})

t.test('a transaction that lost a conflict, in the shapes Prisma, the adapter and pg report it; nothing else', async t => {
  const conflicts: Record<string, unknown> = {
    'P2034 (Prisma)': { code: 'P2034', message: 'Transaction failed due to a write conflict or a deadlock' },
    'adapter kind in meta': { code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'TransactionWriteConflict' } } } },
    'pg: deadlock (40P01)': Object.assign(new Error('deadlock detected'), { code: '40P01' }),
    'pg: serialization failure (40001), as a cause': withCause('query failed', Object.assign(new Error('could not serialize access'), { code: '40001' }))
  }
  for (const [name, error] of Object.entries(conflicts)) {
    t.ok(isTransactionConflict(error), name)
    t.notOk(isDatabaseUnavailable(error), `${name}: not an outage`)
  }
  const others: Record<string, unknown> = {
    'unique violation (P2002)': { code: 'P2002', meta: { driverAdapterError: { cause: { kind: 'UniqueConstraintViolation' } } } },
    'an outage': { code: 'P1001' },
    'lock timeout (55P03)': { code: '55P03', message: 'could not obtain lock' },
    'a bug': new TypeError('x')
  }
  for (const [name, error] of Object.entries(others)) t.notOk(isTransactionConflict(error), name)
})
