// One write per user at a time: a burst of one user's writes waits in memory, not on pooled connections behind the user's row lock.
import t from 'tap'
import { TurnNotReached, turns } from '../../src/plugins/write-turns.js'
import { buildTestApp } from '../helpers/app.js'
import { withClient } from '../helpers/database.js'
import { until } from '../helpers/until.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

const { app, prisma, database } = await buildTestApp(t, { env: { DATABASE_POOL_SIZE: '4', DATABASE_CONNECT_TIMEOUT_SECONDS: '1' } })

t.test('turns: one holder per key, in the order asked; other keys never wait; nothing kept after', async t => {
  const turn = turns()
  const take = (key: string) => turn(key, 60_000)
  const order: string[] = []
  const first = await take('a')
  const second = take('a').then(end => { order.push('second'); return end })
  const other = await take('b')
  order.push('other')
  await Promise.resolve()
  t.same(order, ['other'], 'the second waits for the first; another key does not')
  first()
  first()
  const endSecond = await second
  t.same(order, ['other', 'second'])
  endSecond()
  other()
  const again = await take('a')
  again()
  t.pass('a key is free again once its holders are done')
})

t.test('turns: a turn not reached within its wait is given up; those behind it wait for the holder only', async t => {
  const take = turns()
  const holder = await take('a', 60_000)
  // Ahead of them, a turn that waits far longer: were the waits ahead added to theirs, they
  // would give up after it. (Not a bound on the time they took: on a loaded machine the
  // timers fire late.)
  let patientWaiting = true
  const patient = take('a', 10_000)
  patient.then(() => { patientWaiting = false }, () => { patientWaiting = false })
  const behind = [take('a', 100), take('a', 150), take('a', 200)]
  const outcomes = await Promise.allSettled(behind)
  t.same(outcomes.map(outcome => outcome.status === 'rejected' && outcome.reason instanceof TurnNotReached), [true, true, true], 'each gives up')
  t.ok(patientWaiting, 'after its own wait, not after the waits ahead of it')
  const next = take('a', 1000)
  holder()
  ;(await patient)()
  ;(await next)()
  const free = await take('a', 0)
  free()
  t.pass('the key is free once the holder is done: the given-up turns hold nothing')
})

// Regression: a few hundred profile changes of one user, sent at once, each held a pooled
// connection while waiting for the user's row lock, and everyone else's requests waited for one.
t.test('a burst of one user\'s writes holds one connection at a time; another user is answered meanwhile', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const busy = await registerAccount(app)
  const other = await registerAccount(app)
  const busyHeaders = { authorization: `Bearer ${(await loginWithBody(app, busy)).accessToken}` }
  const otherHeaders = { authorization: `Bearer ${(await loginWithBody(app, other)).accessToken}` }
  const lockWaiters = async (client: Parameters<Parameters<typeof withClient>[1]>[0]) =>
    Number((await client.query('SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = \'Lock\'')).rows[0].count)

  await withClient(database.url, async holder => {
    await withClient(database.url, async watcher => {
      await holder.query('BEGIN')
      await holder.query('SELECT 1 FROM "Profile" WHERE "userId" = $1 FOR UPDATE', [busy.user.id])
      const burst = Array.from({ length: 12 }, (_, i) =>
        app.inject({ method: 'PATCH', url: '/users/me', headers: busyHeaders, payload: { profile: { displayName: `Name ${i}` } } }))
      await until('a write of the busy user to wait for its profile row', async () => await lockWaiters(watcher) >= 1, 5000)
      const meanwhile = await app.inject({ method: 'GET', url: '/users/me', headers: otherHeaders })
      t.equal(meanwhile.statusCode, 200, 'another user is answered while the busy user\'s writes wait')
      t.equal(await lockWaiters(watcher), 1, 'one of the burst waits on the database; the rest wait their turn in memory')
      await holder.query('COMMIT')
      const answers = await Promise.all(burst)
      t.same(answers.map(answer => answer.statusCode), Array(12).fill(200), 'every write of the burst is done, in turn')
    })
  })
  t.match(await prisma.profile.findUniqueOrThrow({ where: { userId: busy.user.id } }), { displayName: /^Name \d+$/ })
})

// Regression: a user's writes queued behind one stalled on the database waited without bound,
// their waits adding up, until the request timeout closed their connections with no answer.
t.test('writes queued behind one stalled on the database are refused 503 within the query timeout, not after the sum of the waits', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const quick = await buildTestApp(t, { database, env: { DATABASE_QUERY_TIMEOUT_SECONDS: '1' } })
  const busy = await registerAccount(quick.app)
  const headers = { authorization: `Bearer ${(await loginWithBody(quick.app, busy)).accessToken}` }
  await withClient(database.url, async holder => {
    await holder.query('BEGIN')
    await holder.query('SELECT 1 FROM "Profile" WHERE "userId" = $1 FOR UPDATE', [busy.user.id])
    const started = Date.now()
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      quick.app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { profile: { displayName: `Name ${i}` } } })))
    const ms = Date.now() - started
    t.same(answers.map(answer => answer.json().code), Array(6).fill('SERVICE_UNAVAILABLE'), 'every one refused')
    t.ok(answers.every(answer => answer.headers['retry-after'] !== undefined), 'with Retry-After')
    // Before: one query timeout per write ahead, six seconds for the last.
    t.ok(ms < 4000, `the last answered ${ms} ms after the first was sent`)
    await holder.query('ROLLBACK')
  })
  t.equal((await prisma.profile.findUniqueOrThrow({ where: { userId: busy.user.id } })).displayName, null, 'and none of them wrote')
})
