// What a refused write means: a unique or foreign key violated, or the row to change gone. Prisma's codes and PostgreSQL's SQLSTATEs, in one place.
import { Prisma } from '../generated/prisma/client.js'

const prismaCodeOf = (error: unknown): string | undefined =>
  error instanceof Prisma.PrismaClientKnownRequestError ? error.code : undefined

// The hand-written statements' errors come from `pg`, with the SQLSTATE in `code`; those of
// Prisma's raw queries (P2010) carry it as the driver adapter's `originalCode`.
const sqlStateOf = (error: unknown): unknown => prismaCodeOf(error) === 'P2010'
  ? (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } }).meta?.driverAdapterError?.cause?.originalCode
  : (error as { code?: unknown } | null)?.code

/** Another row already holds the value of a unique column (an email, a username). */
export function isUniqueViolation (error: unknown): boolean {
  return prismaCodeOf(error) === 'P2002' || sqlStateOf(error) === '23505'
}

/** The row a write refers to is gone (an account deleted meanwhile). */
export function isForeignKeyViolation (error: unknown): boolean {
  return prismaCodeOf(error) === 'P2003' || sqlStateOf(error) === '23503'
}

/** The row an update or delete names does not exist, or no longer matches its `where`. */
export function isRecordNotFound (error: unknown): boolean {
  return prismaCodeOf(error) === 'P2025'
}
