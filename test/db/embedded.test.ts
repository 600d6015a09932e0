// The embedded server: several connections share PGlite's one session a transaction at a time, and a connection that dies mid-transaction is rolled back.
import pg from 'pg'
import t from 'tap'
import { startEmbeddedPostgres } from '../../src/db/embedded.js'

const embedded = await startEmbeddedPostgres()
t.teardown(embedded.stop)

async function client (): Promise<pg.Client> {
  const connection = new pg.Client({ connectionString: embedded.url })
  connection.on('error', () => {})
  await connection.connect()
  return connection
}

t.test('two connections interleaving transactions and extended-protocol queries see only their own work', async t => {
  const [a, b] = [await client(), await client()]
  t.teardown(async () => { await a.end(); await b.end() })
  await a.query('CREATE TABLE counted (owner text, n int)')
  async function work (connection: pg.Client, owner: string): Promise<number> {
    let mismatches = 0
    for (let n = 0; n < 60; n++) {
      await connection.query('BEGIN')
      await connection.query('INSERT INTO counted VALUES ($1, $2)', [owner, n])
      const { rows: [row] } = await connection.query<{ total: number }>('SELECT count(*)::int AS total FROM counted WHERE owner = $1', [owner])
      if (row?.total !== n + 1) mismatches++
      await connection.query(n % 2 === 0 ? 'COMMIT' : 'ROLLBACK')
      if (n % 2 === 1) await connection.query('INSERT INTO counted VALUES ($1, $2)', [owner, n])
    }
    return mismatches
  }
  t.same(await Promise.all([work(a, 'a'), work(b, 'b')]), [0, 0], 'no statement of one ran inside the other\'s transaction')
  const { rows } = await a.query<{ owner: string, total: number }>('SELECT owner, count(*)::int AS total FROM counted GROUP BY owner ORDER BY owner')
  t.same(rows, [{ owner: 'a', total: 60 }, { owner: 'b', total: 60 }])
})

t.test('a connection that goes away inside a transaction: rolled back, and the others go on', async t => {
  const [a, b] = [await client(), await client()]
  t.teardown(() => b.end())
  await b.query('CREATE TABLE kept (n int)')
  await a.query('BEGIN')
  await a.query('INSERT INTO kept VALUES (1)')
  const waiting = b.query<{ total: number }>('SELECT count(*)::int AS total FROM kept')
  ;(a as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy()
  t.same((await waiting).rows, [{ total: 0 }], 'the other connection waited for the transaction, which was rolled back')
  t.same((await b.query('SELECT 1 AS one')).rows, [{ one: 1 }])
})
