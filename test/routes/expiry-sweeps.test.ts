// The sweeps of expired rows (failure counts, second-factor and passkey challenges) skip what another transaction holds, so no request or other sweep waits on them;
// and a remedy finds the user's passkey ceremonies by index, so it holds the user's row no longer for the ceremonies an attack left.
import { setTimeout as sleep } from 'node:timers/promises'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { registrationCeremoniesDeletion } from '../../src/services/passkeys/ceremony-challenges.js'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { enrolTotp } from '../helpers/mfa.js'
import { readsOfIndex } from '../helpers/query-plans.js'
import { loginWithBody, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, pool, database, clock } = await buildTestApp(t)

const account = await registerProvenAccount(app, prisma)
await enrolTotp(app, { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }, clock, account.password)
const expired = () => new Date(clock.now().getTime() - 3_600_000).toISOString()

// Each sweep ran at every request that adds a row (a failed login, a challenge); it deleted the
// expired rows in its plan's order and waited for any another transaction held: requests at
// once queued on each other's sweeps, and two deleting rows in different orders could deadlock.
// Login challenges are swept each minute now (and by the retention pass), not by the login.
const answers = (status: number, request: () => Promise<LightMyRequestResponse>) => async (t: Test) => { t.equal((await request()).statusCode, status) }
const sweeps: Array<{ table: string, key: string, insert: string, sweep: (t: Test) => Promise<unknown> }> = [
  {
    table: 'LoginFailure',
    key: 'key',
    insert: 'INSERT INTO "LoginFailure" (key, failures, "lastFailureAt", "expiresAt") VALUES ($1, 1, $2, $2)',
    sweep: answers(401, async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password' } }))
  },
  {
    table: 'MfaChallenge',
    key: 'id',
    insert: `INSERT INTO "MfaChallenge" (id, "userId", "tokenHash", "throttleKey", "expiresAt", "createdAt") VALUES ($1::uuid, '${account.user.id}', $1, 'k', $2, $2)`,
    sweep: async () => await app.retention.sweepChallenges()
  },
  {
    table: 'WebauthnChallenge',
    key: 'challenge',
    insert: 'INSERT INTO "WebauthnChallenge" (challenge, purpose, "expiresAt", "createdAt") VALUES ($1, \'login\', $2, $2)',
    sweep: answers(200, async () => await app.inject({ method: 'POST', url: '/auth/passkeys/login/options' }))
  }
]

for (const { table, key, insert, sweep } of sweeps) {
  t.test(`the ${table} sweep skips a row another transaction holds, and deletes the rest`, {
    skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
  }, async t => {
    const [held, free] = [crypto.randomUUID(), crypto.randomUUID()]
    for (const id of [held, free]) await pool.query(insert, [id, expired()])
    await withClient(database.url, async holder => {
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM "${table}" WHERE ${key} = $1 FOR UPDATE`, [held])
      const pending = sweep(t)
      const first = await Promise.race([pending.then(() => 'done'), sleep(3000, 'still waiting')])
      await holder.query('ROLLBACK')
      t.equal(first, 'done', 'the sweep did not wait for the held row')
      await pending
    })
    const left = await pool.query(`SELECT ${key} AS id FROM "${table}" WHERE ${key} = ANY($1)`, [[held, free]])
    t.same(left.rows, [{ id: held }], 'the held row is left for a later sweep; the other is gone')
  })
}

// Regression: a request's sweep deleted every expired row at once, however many an attack had left.
t.test('a request sweeps at most 1000 expired rows; the retention pass works off the rest', async t => {
  const backlog: Array<{ table: string, insert: string, request: () => Promise<LightMyRequestResponse> }> = [
    {
      table: 'LoginFailure',
      insert: 'INSERT INTO "LoginFailure" (key, failures, "lastFailureAt", "expiresAt") SELECT \'backlog-\' || n, 1, $1, $1 FROM generate_series(1, 2500) n',
      request: async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password' } })
    },
    {
      table: 'WebauthnChallenge',
      insert: 'INSERT INTO "WebauthnChallenge" (challenge, purpose, "expiresAt", "createdAt") SELECT \'backlog-\' || n, \'login\', $1, $1 FROM generate_series(1, 2500) n',
      request: async () => await app.inject({ method: 'POST', url: '/auth/passkeys/login/options' })
    }
  ]
  const expiredIn = async (table: string) => Number((await pool.query(`SELECT count(*) FROM "${table}" WHERE "expiresAt" < $1`, [clock.now()])).rows[0].count)
  for (const { table, insert, request } of backlog) {
    await pool.query(insert, [expired()])
    const before = await expiredIn(table)
    await request()
    t.equal(before - await expiredIn(table), 1000, `${table}: a request deleted 1000 of ${before}`)
  }
  await app.retention.pass()
  for (const { table } of backlog) t.equal(await expiredIn(table), 0, `${table}: the pass deleted the rest`)
})

// Regression: the deletion read every ceremony in the table, under the user's row: anyone who
// can ask for ceremonies (a passwordless sign-in asks for one) could slow every remedy down.
t.test('a remedy ends the user\'s passkey registrations by index, not by reading every ceremony', async t => {
  const reads = await readsOfIndex(database.url, registrationCeremoniesDeletion(account.user.id), 'WebauthnChallenge_bindingId_idx')
  const lookups = reads.map(node => node['Index Cond'])
  t.match(lookups, [/"bindingId" = /], 'the ceremonies of the user\'s sessions, looked up by bindingId')
})
