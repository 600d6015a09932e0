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
 * Creates an empty database that only this test uses; `drop` removes it. On a server
 * (TEST_DATABASE_URL) it is a new database named auth_test_*, made through that URL;
 * existing databases are never touched.
 */
export async function createEmptyDatabase (): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL
  if (serverUrl === undefined || serverUrl === '') {
    const embedded = await startEmbeddedPostgres()
    return { url: embedded.url, poolSize: 1, drop: embedded.stop }
  }
  const name = `auth_test_${randomBytes(6).toString('hex')}`
  await withClient(serverUrl, admin => admin.query(`CREATE DATABASE ${name}`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    poolSize: 5,
    drop: async () => { await withClient(serverUrl, admin => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) }
  }
}

/** An empty database with every migration applied. */
export async function createTestDatabase (): Promise<TestDatabase> {
  const database = await createEmptyDatabase()
  await applyMigrations(database.url)
  return database
}

export async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}
