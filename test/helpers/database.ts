// A database of the test's own: a fresh PostgreSQL database (TEST_DATABASE_URL) or an in-memory embedded one.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { startEmbeddedPostgres } from '../../src/db/embedded.js'
import { applyMigrations } from '../../src/db/schema-engine.js'

export interface TestDatabase {
  url: string
  poolSize: number
  drop: () => Promise<void>
}

/**
 * Creates a migrated database that only this test uses; `drop` removes it. On a
 * server (TEST_DATABASE_URL) it is a new database named auth_test_*, made through that
 * URL; existing databases are never touched.
 */
export async function createTestDatabase (): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL
  if (serverUrl === undefined || serverUrl === '') {
    const embedded = await startEmbeddedPostgres()
    await applyMigrations(embedded.url)
    return { url: embedded.url, poolSize: 1, drop: embedded.stop }
  }
  const name = `auth_test_${randomBytes(6).toString('hex')}`
  await withAdmin(serverUrl, admin => admin.query(`CREATE DATABASE ${name}`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  await applyMigrations(url.toString())
  return {
    url: url.toString(),
    poolSize: 5,
    drop: () => withAdmin(serverUrl, admin => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  }
}

async function withAdmin (url: string, work: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await work(client)
  } finally {
    await client.end()
  }
}
