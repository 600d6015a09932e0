// Racing a request against another transaction: hold rows, let the request queue on them, then let go.
import type pg from 'pg'
import { withClient } from './database.js'
import { until } from './until.js'

/** The login's statement (src/services/sessions/session-store.ts) while it waits for its user's row. */
export const loginStatement = '%FROM "User" WHERE id = $2 %FOR NO KEY UPDATE%'

export interface Hold {
  /** What the other transaction does first: the rows it locks or writes stay held until it commits. */
  hold: (holder: pg.Client) => Promise<unknown>
  /** A LIKE pattern of the request's statement, seen waiting for a lock before the commit. */
  waitingStatement: string
  /** Runs after the request is seen waiting, inside the other transaction, before its commit. */
  meanwhile?: (holder: pg.Client) => Promise<unknown>
}

/** Starts `request` while another transaction holds rows; once the request waits on them, commits, and returns the request's answer. */
export async function whileHeld<T> (databaseUrl: string, pool: pg.Pool, { hold, waitingStatement, meanwhile }: Hold, request: () => Promise<T>): Promise<T> {
  return await withClient(databaseUrl, async holder => {
    await holder.query('BEGIN')
    await hold(holder)
    const pending = request()
    await until(`a statement like ${waitingStatement} to wait for a lock`, async () =>
      (await pool.query('SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\' AND query LIKE $1', [waitingStatement])).rowCount === 1, 5000)
    await meanwhile?.(holder)
    await holder.query('COMMIT')
    return await pending
  })
}

/** A `meanwhile` that ends the connection of the request's waiting statement: the database drops it mid-transaction, as in a failover. */
export function dropConnectionOf (pool: pg.Pool, waitingStatement: string): () => Promise<void> {
  return async () => {
    const { rowCount } = await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\' AND query LIKE $1', [waitingStatement])
    if (rowCount !== 1) throw new Error(`no statement like ${waitingStatement} to end`)
  }
}

/**
 * Two requests racing over the rows `hold` locks: `first` starts and queues on them, `second`
 * starts once it does and has a moment to queue as well; then the rows are let go. Both
 * answers, in that order: a deadlock between the two shows as a 503 in one of them.
 */
export async function racedWhileHeld<A, B> (databaseUrl: string, pool: pg.Pool, { hold, waitingStatement }: Omit<Hold, 'meanwhile'>, first: () => Promise<A>, second: () => Promise<B>): Promise<[A, B]> {
  let started: Promise<B> | undefined
  const firstAnswer = await whileHeld(databaseUrl, pool, {
    hold,
    waitingStatement,
    meanwhile: async () => {
      started = second()
      await new Promise(resolve => setTimeout(resolve, 300))
    }
  }, first)
  return [firstAnswer, await (started as Promise<B>)]
}
