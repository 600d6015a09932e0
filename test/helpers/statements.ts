// What the service sends on its pool's `query` (the hand-written statements of src/db/sql.ts; Prisma's queries go by `connect`).
import type pg from 'pg'

/** The names of the statements sent on `pool` while `work` runs, in order (undefined for an unnamed one). */
export async function statementsDuring (pool: pg.Pool, work: () => Promise<unknown>): Promise<Array<string | undefined>> {
  const query = pool.query
  const names: Array<string | undefined> = []
  pool.query = ((...args: unknown[]) => {
    names.push((args[0] as { name?: string }).name)
    return (query as (...a: unknown[]) => unknown).apply(pool, args)
  }) as typeof query
  try {
    await work()
  } finally {
    pool.query = query
  }
  return names
}
