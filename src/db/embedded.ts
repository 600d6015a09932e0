// Embedded PostgreSQL (PGlite, PostgreSQL in WASM) served on a loopback port, so the
// service reaches it through the same `pg` driver and Prisma adapter as a real server.
import { mkdir } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

export interface EmbeddedPostgres {
  /** A `postgresql://` URL for `pg`; the server accepts one connection at a time. */
  url: string
  stop: () => Promise<void>
}

/**
 * Starts PGlite on 127.0.0.1 at `port` (default: a free one). `dataDir` keeps the data on
 * disk across restarts; without it the database lives in memory (tests, shadow databases).
 *
 * PGlite is a single-session database: the socket server's multiplexer could interleave
 * two clients' extended-protocol messages, so it accepts one connection and callers use
 * a pool of size one (see `createPrisma`).
 */
export async function startEmbeddedPostgres (dataDir?: string, port = 0): Promise<EmbeddedPostgres> {
  // PGlite creates only the last directory of the path; a fresh clone has no .data/ yet.
  if (dataDir !== undefined) await mkdir(dataDir, { recursive: true })
  const db = await PGlite.create(dataDir === undefined ? undefined : { dataDir })
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 1 })
  try {
    await server.start()
  } catch (error) {
    await db.close()
    throw error
  }
  const { port: boundPort } = server as unknown as { port: number }
  return {
    url: `postgresql://postgres@127.0.0.1:${boundPort}/postgres?sslmode=disable`,
    async stop () {
      await server.stop()
      await db.close()
    }
  }
}
