// Several connections into PGlite's single session, taking turns a transaction at a time (as PgBouncer's transaction mode does).
import type { PGlite } from '@electric-sql/pglite'

interface Message {
  connection: number
  bytes: Uint8Array
  onData: (data: Uint8Array) => void
  resolve: (bytes: number) => void
  reject: (error: unknown) => void
}

const SYNC = 0x53 // 'S': ends an extended-protocol exchange (Parse, Bind, Execute…)
const QUERY = 0x51 // 'Q': a simple query, a whole exchange in itself
const TERMINATE = 0x58 // 'X'

/**
 * The place in the queue of `@electric-sql/pglite-socket`'s connection handlers. PGlite is one
 * PostgreSQL session: pglite-socket's own queue runs each client's messages as they come, so
 * two clients' extended-protocol messages can interleave (one's Parse, the other's Bind) and
 * break both. Here a connection that starts an exchange owns the session until it is back to
 * idle outside a transaction (ReadyForQuery, status I); the others wait their turn. A
 * connection that goes away mid-transaction has its transaction rolled back.
 *
 * What the clients still share is session state: prepared statements, settings, session
 * advisory locks. Only one client (the owning service) may name its statements, and none may
 * change settings: see `DatabaseOptions.guest`.
 */
export function createSessionGate (db: PGlite) {
  let queue: Message[] = []
  let owner: number | null = null
  let running = false

  // A startup message has no type byte: it begins with its length, whose first byte is 0.
  const endsExchange = (bytes: Uint8Array) =>
    bytes[0] === SYNC || bytes[0] === QUERY || bytes[0] === TERMINATE || bytes[0] === 0

  function next (): Message | undefined {
    const index = owner === null ? 0 : queue.findIndex(message => message.connection === owner)
    return index === -1 ? undefined : queue.splice(index, 1)[0]
  }

  async function pump (): Promise<void> {
    if (running) return
    running = true
    try {
      for (let message = next(); message !== undefined; message = next()) {
        owner = message.connection
        let sent = 0
        const { onData } = message
        try {
          await db.runExclusive(() => db.execProtocolRawStream(message.bytes, { onRawData: data => { sent += data.length; onData(data) } }))
          message.resolve(sent)
        } catch (error) {
          message.reject(error)
        }
        if (endsExchange(message.bytes) && !db.isInTransaction()) owner = null
      }
    } finally {
      running = false
    }
  }

  return {
    enqueue (connection: number, bytes: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
      return new Promise((resolve, reject) => {
        queue.push({ connection, bytes, onData, resolve, reject })
        pump().catch(reject)
      })
    },

    getQueueLength: () => queue.length,

    clearQueueForHandler (connection: number): void {
      for (const message of queue.filter(m => m.connection === connection)) message.reject(new Error('connection closed'))
      queue = queue.filter(m => m.connection !== connection)
    },

    /** The connection went away: whatever it left open is rolled back, and the others go on. */
    async clearTransactionIfNeeded (connection: number): Promise<void> {
      if (owner !== connection) return
      if (db.isInTransaction()) await db.exec('ROLLBACK')
      owner = null
      await pump()
    }
  }
}
