// Opens the configured database: DATABASE_URL, or the embedded PGlite kept under DATA_DIR.
import { join } from 'node:path'
import type { Config } from '../config.js'
import { startEmbeddedPostgres } from './embedded.js'

export interface Database {
  url: string
  poolSize: number
  /** Where the data lives, for the logs; never the URL, which may hold a password. */
  description: string
  stop: () => Promise<void>
}

export async function openDatabase (config: Config): Promise<Database> {
  if (config.DATABASE_URL !== undefined) {
    return { url: config.DATABASE_URL, poolSize: config.DATABASE_POOL_SIZE, description: 'DATABASE_URL', stop: async () => {} }
  }
  const dataDir = join(config.DATA_DIR, 'pglite')
  const embedded = await startEmbeddedPostgres(dataDir)
  return { url: embedded.url, poolSize: 1, description: `the embedded database in ${dataDir}`, stop: embedded.stop }
}
