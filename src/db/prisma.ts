// Prisma client factory: the generated client over `pg` through the driver adapter (no native engine).
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '../generated/prisma/client.js'

export interface DatabaseOptions {
  url: string
  /** Connections in the pool; 1 for the embedded database, which serves one session. */
  poolSize: number
}

export function createPrisma ({ url, poolSize }: DatabaseOptions): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: url,
    max: poolSize,
    // Fail fast when the database is unreachable instead of queueing requests forever.
    connectionTimeoutMillis: 5_000,
    // A single connection (embedded database) is kept open: the embedded server accepts
    // one at a time, and a reconnect could race the closing of the idle one.
    idleTimeoutMillis: poolSize === 1 ? 0 : 10_000
  })
  return new PrismaClient({ adapter })
}

export type { PrismaClient }

/** The client handed to an interactive transaction's callback. */
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0]

/** Where a query may run: the client itself or an open transaction. */
export type Db = PrismaClient | Transaction
