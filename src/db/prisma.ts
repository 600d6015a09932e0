// The connection pool, and the Prisma client over it (driver adapter, no native engine).
import { PrismaPg } from '@prisma/adapter-pg'
import pg from 'pg'
import type { Config } from '../config.js'
import { PrismaClient } from '../generated/prisma/client.js'

export interface DatabaseOptions {
  url: string
  /** Connections in the pool; 1 for the embedded database, which serves one session. */
  poolSize: number
  /**
   * Connected to an embedded database that another process owns (a command beside the
   * running service). PGlite is one session shared by every connection: a guest leaves the
   * owner's named statements alone (its own go unnamed), and Prisma names none.
   */
  guest?: boolean | undefined
}

export interface DatabaseTimeouts {
  /** Opening a connection (TCP and PostgreSQL start-up) fails after this long. */
  connectTimeoutSeconds: number
  /**
   * A statement that runs this long is cancelled by the server, so nothing of it is written;
   * a result that has not arrived a second later fails, and its connection is dropped.
   */
  queryTimeoutSeconds: number
}

const defaultTimeouts: DatabaseTimeouts = { connectTimeoutSeconds: 5, queryTimeoutSeconds: 10 }

/** The configured timeouts (DATABASE_CONNECT_TIMEOUT_SECONDS, DATABASE_QUERY_TIMEOUT_SECONDS). */
export function databaseTimeoutsOf (config: Config): DatabaseTimeouts {
  return { connectTimeoutSeconds: config.DATABASE_CONNECT_TIMEOUT_SECONDS, queryTimeoutSeconds: config.DATABASE_QUERY_TIMEOUT_SECONDS }
}

/**
 * Every wait on the database is bounded, so an unreachable or hung server turns into a
 * quick 503 (see `isDatabaseUnavailable`) rather than requests piling up forever.
 */
export function createPool ({ url, poolSize, guest }: DatabaseOptions, timeouts: DatabaseTimeouts = defaultTimeouts): pg.Pool {
  const statementTimeoutMs = timeouts.queryTimeoutSeconds * 1000
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: timeouts.connectTimeoutSeconds * 1000,
    // pg's client-side read timeout: a server that stops answering (frozen, partitioned)
    // fails the query instead of holding it, and the pool discards the connection. A second
    // after the server's own cancel (connectionSetup), which answers first when it can.
    query_timeout: statementTimeoutMs + 1000,
    // TCP keep-alive notices a silently dropped idle connection before a query needs it.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A single connection (embedded database) is kept open: a reconnect would cost a
    // session clean-up (below) for nothing.
    idleTimeoutMillis: poolSize === 1 ? 0 : 10_000,
    // A session keeps the defaults it was opened with: one opened while the database was
    // read-only (ALTER DATABASE … SET default_transaction_read_only) stays so after, and the pool
    // hands out its latest connection first, so a polled /ready would keep it, and the instance
    // out, for ever. A minute's life bounds that; a reconnect costs a few milliseconds.
    maxLifetimeSeconds: poolSize === 1 ? 0 : 60,
    onConnect: async (client: pg.ClientBase) => { await connectionSetup(client, { statementTimeoutMs, guest: guest === true, embedded: poolSize === 1 }) }
  })
  // An idle connection that breaks is dropped by the pool and replaced at the next query;
  // without a listener, its 'error' event would end the process.
  pool.on('error', () => {})
  if (guest === true) sendStatementsUnnamed(pool)
  return pool
}

/**
 * Before a connection's first query (the pool awaits it; a query issued from its 'connect'
 * event would run alongside, which pg 8 deprecates and pg 9 refuses).
 *
 * statement_timeout: a client-side timeout alone leaves the statement running on the server,
 * which commits it later (a lock released, storage back): a request answered 503 would still
 * have written, and a refresh retried after it would be taken for a stolen token. Cancelled by
 * the server, the statement writes nothing, and the 503 tells the truth. Set per session, not
 * as a start-up parameter, which PgBouncer refuses.
 */
async function connectionSetup (client: pg.ClientBase, { statementTimeoutMs, guest, embedded }: { statementTimeoutMs: number, guest: boolean, embedded: boolean }): Promise<void> {
  // A guest leaves the owner's session as it is (see `DatabaseOptions.guest`).
  if (guest) return
  // The embedded database's one session outlives a replaced connection (after a timeout, say):
  // the named statements of the one it replaces are still there, and preparing them again would fail.
  if (embedded) await client.query('DEALLOCATE ALL')
  await client.query(`SET statement_timeout = ${statementTimeoutMs}`)
  // A transaction whose client falls silent between statements (a partition, a frozen host or
  // VM, a stalled process) keeps its row and advisory locks until the server's TCP keep-alive
  // gives up, hours later, and every instance waits on them. The server ends such a session
  // after the same bound, which rolls the transaction back. Not on the embedded database,
  // whose one session is the whole database.
  if (!embedded) await client.query(`SET idle_in_transaction_session_timeout = ${statementTimeoutMs}`)
}

/**
 * A guest shares the owner's one session (see `DatabaseOptions.guest`): a named statement
 * (`src/db/sql.ts`) would collide with the same name prepared there before, by the owner or
 * an earlier guest. A guest's commands are few, so they go unnamed, planned each time.
 */
function sendStatementsUnnamed (pool: pg.Pool): void {
  const query = pool.query.bind(pool) as (config: unknown, values?: unknown) => Promise<pg.QueryResult>
  pool.query = ((config: unknown, values?: unknown) =>
    query(typeof config === 'object' && config !== null ? { ...config, name: undefined } : config, values)) as typeof pool.query
}

/**
 * Prisma over `pool`, which stays the caller's to end; given options instead, Prisma gets a
 * pool of its own and ends it at `$disconnect`. The hot paths (token checks, login,
 * refresh) query the same pool directly: see `src/db/sql.ts`.
 *
 * An interactive transaction is bounded by the same timeouts as a query, not by Prisma's own
 * defaults (2 s to start, 5 s in all): it waits for a connection as long as a query does, and
 * may last as long as one query may. Running out of either answers 503 like any other wait
 * on the database (see `isDatabaseUnavailable`).
 */
export function createPrisma (source: DatabaseOptions | pg.Pool, timeouts: DatabaseTimeouts = defaultTimeouts): PrismaClient {
  const owned = !(source instanceof pg.Pool)
  const pool = source instanceof pg.Pool ? source : createPool(source, timeouts)
  return new PrismaClient({
    adapter: new PrismaPg(pool, { disposeExternalPool: owned }),
    transactionOptions: { maxWait: timeouts.connectTimeoutSeconds * 1000, timeout: timeouts.queryTimeoutSeconds * 1000 }
  })
}

export type { PrismaClient }

/** The client handed to an interactive transaction's callback. */
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/** Where a query may run: the client itself or an open transaction. */
export type Db = PrismaClient | Transaction

/**
 * Whether the database answers, and takes writes: one round trip, since readiness is polled.
 * `transaction_read_only` is on in a standby and under `default_transaction_read_only` alike
 * (a failover that left the pool on a standby, a primary back read-only).
 */
export async function pingDatabase (prisma: PrismaClient): Promise<{ writable: boolean }> {
  const [row] = await prisma.$queryRaw<Array<{ writable: boolean }>>`SELECT current_setting('transaction_read_only') = 'off' AS writable`
  return { writable: row?.writable === true }
}
