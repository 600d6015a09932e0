// The sweeps of expired rows (failure counts, second-factor and passkey challenges) skip what another transaction holds, so no request waits on them.
import { setTimeout as sleep } from 'node:timers/promises'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { enrolTotp, startLogin } from '../helpers/mfa.js'
import { loginWithBody, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, pool, database, clock } = await buildTestApp(t)

const account = await registerProvenAccount(app, prisma)
await enrolTotp(app, { authorization: `Bearer ${(await loginWithBody(app, account)).accessToken}` }, clock)
const expired = () => new Date(clock.now().getTime() - 3_600_000).toISOString()

// Each sweep ran at every request that adds a row (a failed login, a challenge); it deleted the
// expired rows in its plan's order and waited for any another transaction held: requests at
// once queued on each other's sweeps, and two deleting rows in different orders could deadlock.
const sweeps: Array<{ table: string, key: string, insert: string, request: () => Promise<LightMyRequestResponse>, status: number }> = [
  {
    table: 'LoginFailure',
    key: 'key',
    insert: 'INSERT INTO "LoginFailure" (key, failures, "lastFailureAt", "expiresAt") VALUES ($1, 1, $2, $2)',
    request: async () => await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'not the password' } }),
    status: 401
  },
  {
    table: 'MfaChallenge',
    key: 'id',
    insert: `INSERT INTO "MfaChallenge" (id, "userId", "tokenHash", "throttleKey", "expiresAt", "createdAt") VALUES ($1::uuid, '${account.user.id}', $1, 'k', $2, $2)`,
    request: async () => await startLogin(app, account),
    status: 200
  },
  {
    table: 'WebauthnChallenge',
    key: 'challenge',
    insert: 'INSERT INTO "WebauthnChallenge" (challenge, purpose, "expiresAt", "createdAt") VALUES ($1, \'login\', $2, $2)',
    request: async () => await app.inject({ method: 'POST', url: '/auth/passkeys/login/options' }),
    status: 200
  }
]

for (const { table, key, insert, request, status } of sweeps) {
  t.test(`the ${table} sweep skips a row another transaction holds, and deletes the rest`, {
    skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
  }, async t => {
    const [held, free] = [crypto.randomUUID(), crypto.randomUUID()]
    for (const id of [held, free]) await pool.query(insert, [id, expired()])
    await withClient(database.url, async holder => {
      await holder.query('BEGIN')
      await holder.query(`SELECT 1 FROM "${table}" WHERE ${key} = $1 FOR UPDATE`, [held])
      const pending = request()
      const first = await Promise.race([pending, sleep(3000, 'still waiting')])
      await holder.query('ROLLBACK')
      t.not(first, 'still waiting', 'the request did not wait for the held row')
      t.equal((await pending).statusCode, status)
    })
    const left = await pool.query(`SELECT ${key} AS id FROM "${table}" WHERE ${key} = ANY($1)`, [[held, free]])
    t.same(left.rows, [{ id: held }], 'the held row is left for a later sweep; the other is gone')
  })
}
