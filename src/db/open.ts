// Opens the configured database: DATABASE_URL, or the embedded PGlite kept under DATA_DIR, which one process owns at a time.
import { mkdir } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DatabaseConfig } from '../config.js'
import { acquireDataDirLock, type LockHolder } from './data-dir-lock.js'

export interface Database {
  url: string
  poolSize: number
  /** Connected to an embedded database that another process owns (see `DatabaseOptions.guest`). */
  guest?: boolean
  /** Where the data lives, for the logs; never the URL, which may hold a password. */
  description: string
  /**
   * The embedded database's owner lets the tools in, once its own start-up is done: PGlite
   * being one session, the schema engine's advisory lock cannot keep two migrations apart.
   */
  share?: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * `service`: the running service, which owns the embedded database and lets the tools in.
 * `tool`: a command (db:migrate, admin:create…), which goes through the running service when
 * there is one, and otherwise owns the database for as long as it runs.
 */
export type DatabaseUser = 'service' | 'tool'

/** How long to wait for a tool that holds the embedded database (it finishes in seconds). */
const WAIT_FOR_TOOL_MS = 30_000

export class DatabaseBusyError extends Error {
  override name = 'DatabaseBusyError'
}

export async function openDatabase (
  config: DatabaseConfig,
  user: DatabaseUser,
  /** Told once when the embedded database is held by a tool and this has to wait. */
  onWait: (holder: LockHolder | null) => void = () => {}
): Promise<Database> {
  if (config.DATABASE_URL !== undefined) {
    return { url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE, description: 'DATABASE_URL', stop: async () => {} }
  }
  const dataDir = resolve(config.DATA_DIR, 'pglite')
  const lockPath = join(config.DATA_DIR, 'pglite.lock')
  // Only this user's: it holds the database files, the development secret and the lock.
  await mkdir(config.DATA_DIR, { recursive: true, mode: 0o700 })
  const deadline = Date.now() + WAIT_FOR_TOOL_MS
  let waited = false
  for (;;) {
    const taken = await acquireDataDirLock(lockPath)
    if ('lock' in taken) {
      // PGlite is loaded only here: a service on DATABASE_URL never needs it (docs/benchmarks.md, Memory).
      const { startEmbeddedPostgres } = await import('./embedded.js')
      const embedded = await startEmbeddedPostgres(dataDir).catch(async (error: unknown) => { await taken.lock.release(); throw error })
      const stop = async () => { await embedded.stop(); await taken.lock.release() }
      const opened: Database = { url: embedded.url, poolSize: 1, description: `the embedded database in ${dataDir}`, stop }
      // Tools that find the URL in the lock file connect through this process.
      if (user === 'service') opened.share = () => taken.lock.publish(embedded.url)
      return opened
    }
    const { holder } = taken
    if (holder !== null && holder.host !== hostname()) {
      // Another host's process cannot be checked from here: only whoever knows it is gone may take over.
      throw new DatabaseBusyError(`${busy(dataDir, holder)} on ${holder.host}; stop it there first, or, if that host is gone (a container made anew, say), remove ${lockPath}`)
    }
    if (holder?.url !== undefined) {
      if (user === 'service') throw new DatabaseBusyError(`${busy(dataDir, holder)}, another running service; stop it first, or give this one its own DATA_DIR`)
      return { url: holder.url, poolSize: 1, guest: true, description: `the embedded database in ${dataDir}, through the running service (pid ${holder.pid})`, stop: async () => {} }
    }
    if (Date.now() > deadline) throw new DatabaseBusyError(`${busy(dataDir, holder)}, which has not let go of it for ${WAIT_FOR_TOOL_MS / 1000} s; let it finish or stop it, then try again`)
    if (!waited) onWait(holder)
    waited = true
    await sleep(200)
  }
}

function busy (dataDir: string, holder: LockHolder | null): string {
  return `the embedded database in ${dataDir} is in use by ${holder === null ? 'a process starting up' : `process ${holder.pid}`}`
}
