// Transaction-scoped advisory locks: serialise read-check-write sequences that span rows.
import type { Transaction } from './prisma.js'

/**
 * Holds a PostgreSQL advisory lock named `name` until the transaction ends, so concurrent
 * transactions doing the same check-then-write (on every instance) run one after another.
 */
export async function lockFor (tx: Transaction, name: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${name}))`
}

/** `lockFor`'s shared form: any number of holders at once, while nobody holds it with `lockFor`. */
export async function shareLockFor (tx: Transaction, name: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(hashtext(${name}))`
}

/**
 * `lockFor` for each of `names`, in one round trip, taken in one order whoever asks: two
 * transactions locking overlapping sets wait for each other rather than deadlock.
 */
export async function lockAllFor (tx: Transaction, names: string[]): Promise<void> {
  await tx.$queryRaw`SELECT count(pg_advisory_xact_lock(hashtext(name))) FROM (SELECT DISTINCT unnest(${names}::text[]) AS name ORDER BY 1) AS names`
}
