// Embedded PostgreSQL (PGlite, PostgreSQL in WASM) served on a loopback port, so the
// service reaches it through the same `pg` driver and Prisma adapter as a real server.
import { chmod, mkdir } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { PGlite, type PGliteOptions } from '@electric-sql/pglite'
import { PGLiteSocketHandler } from '@electric-sql/pglite-socket'
import { createSessionGate } from './session-gate.js'

export interface EmbeddedPostgres {
  /** A `postgresql://` URL for `pg`. */
  url: string
  stop: () => Promise<void>
  /** The data directory as a tarball, which `from.loadDataDir` starts another instance with. */
  dump: () => Promise<Blob>
  /** Connections open now. */
  connections: () => number
}

/**
 * What an instance may start from instead of running initdb and compiling PGlite's WASM anew,
 * and PostgreSQL's start parameters: the tests clone a migrated database this way, with a
 * smaller buffer pool (test/helpers/database.ts).
 */
export type EmbeddedStart = Pick<PGliteOptions, 'loadDataDir' | 'pgliteWasmModule' | 'fsBundle' | 'startParams'>

/** Connections served at once: the owner's pool of one, and a few command-line tools beside it. */
const MAX_CONNECTIONS = 8

/**
 * Starts PGlite on 127.0.0.1 at `port` (default: a free one). `dataDir` keeps the data on
 * disk across restarts; without it the database lives in memory (tests, shadow databases).
 * Opening a data directory is `openDatabase`'s business (src/db/open.ts), which makes sure
 * no other process has it open.
 *
 * PGlite is a single session: connections take turns a transaction at a time (see
 * `createSessionGate`), and the owner uses a pool of one (see `createPool`).
 */
export async function startEmbeddedPostgres (dataDir?: string, port = 0, from: EmbeddedStart = {}): Promise<EmbeddedPostgres> {
  // PGlite creates only the last directory of the path; a fresh clone has no .data/ yet. The
  // files are the database's (password hashes among them), and PGlite makes them readable and
  // writable by every user: the directory keeps them this user's, one made earlier too.
  if (dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await chmod(dataDir, 0o700)
  }
  const db = await PGlite.create({ ...from, ...(dataDir === undefined ? {} : { dataDir }) })
  const gate = createSessionGate(db)
  const handlers = new Set<PGLiteSocketHandler>()

  function serve (socket: Socket): void {
    socket.on('error', () => {})
    if (handlers.size >= MAX_CONNECTIONS) {
      socket.end()
      return
    }
    // The handler only calls the queue's public methods, which the gate provides.
    const handler = new PGLiteSocketHandler({ queryQueue: gate as unknown as ConstructorParameters<typeof PGLiteSocketHandler>[0]['queryQueue'], closeOnDetach: true })
    handlers.add(handler)
    const forget = () => handlers.delete(handler)
    handler.addEventListener('close', forget)
    handler.addEventListener('error', forget)
    handler.attach(socket).catch(() => { forget(); socket.destroy() })
  }

  const server = createServer(serve)
  try {
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
  } catch (error) {
    await db.close()
    throw error
  }
  const { port: boundPort } = server.address() as { port: number }
  return {
    url: `postgresql://postgres@127.0.0.1:${boundPort}/postgres?sslmode=disable`,
    async stop () {
      const closed = new Promise(resolve => server.close(resolve))
      await Promise.all([...handlers].map(handler => handler.detach(true)))
      handlers.clear()
      await closed
      await db.close()
    },
    dump: async () => await db.dumpDataDir('none'),
    connections: () => handlers.size
  }
}
