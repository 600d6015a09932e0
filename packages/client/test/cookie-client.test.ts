// Cookie mode against a stand-in of the service: one refresh per expiry for every call and tab, no refresh loop, the session's end told to every tab.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createAuthClient, isAuthError, type AuthClient, type AuthClientOptions, type SessionEndEvent } from '../src/index.js'
import { createLockManager } from './helpers/locks.js'
import { createStandIn, errorAnswer, sessionIdOf, user, type StandIn } from './helpers/stand-in.js'

const baseUrl = 'https://auth.example.com'

interface Tab { client: AuthClient, ended: SessionEndEvent[] }

/** `count` tabs of one app: one cookie jar (the stand-in), one lock manager, one channel name. */
function openTabs (t: { teardown: (fn: () => void) => void }, service: StandIn, count: number, options: Partial<AuthClientOptions> = {}): Tab[] {
  const locks = options.locks === undefined ? createLockManager() : options.locks
  const name = `test ${randomUUID()}`
  return Array.from({ length: count }, () => {
    const client = createAuthClient({ baseUrl, fetch: service.fetch, name, locks, ...options })
    const ended: SessionEndEvent[] = []
    client.onSessionEnd(event => { ended.push(event) })
    t.teardown(() => { client.close() })
    return { client, ended }
  })
}

// BroadcastChannel messages arrive on a later turn of the event loop.
const settle = () => new Promise(resolve => setTimeout(resolve, 20))

t.test('an expired access token: one refresh, one retry, and the call succeeds, from a service that names its sessions or not', async t => {
  for (const namesSessions of [true, false]) {
    const service = createStandIn({ namesSessions })
    const [tab] = openTabs(t, service, 1) as [Tab]
    t.match(await tab.client.login({ email: user.email, password: 'pw' }), { mfaRequired: false, user })
    service.expire()
    t.same(await tab.client.me(), user)
    t.same(service.sent.map(r => `${r.method} ${r.path}`), ['POST /auth/login', 'GET /users/me', 'POST /auth/refresh', 'GET /users/me'])
    t.equal(service.state.rotations, 1)
    t.same(tab.ended, [])
  }
})

t.test('concurrent calls of one tab share one refresh', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  const results = await Promise.all(Array.from({ length: 6 }, () => tab.client.me()))
  t.equal(results.length, 6)
  t.equal(service.count('POST /auth/refresh'), 1)
  t.equal(service.state.rotations, 1)
})

for (const withLocks of [true, false]) {
  t.test(`tabs share one refresh per expiry ${withLocks ? 'through Web Locks' : 'without Web Locks (one per tab at most, never a logout)'}`, async t => {
    const service = createStandIn()
    const tabs = openTabs(t, service, 4, withLocks ? {} : { locks: null })
    await tabs[0]?.client.login({ email: user.email, password: 'pw' })
    // A call sent in the very millisecond of another tab's sign-in is taken for the old session's.
    await settle()
    for (let round = 1; round <= 3; round++) {
      service.expire()
      const calls = tabs.flatMap(tab => [tab.client.me(), tab.client.sessions().catch(() => null), tab.client.me()])
      const results = await Promise.allSettled(calls)
      t.same(results.filter(r => r.status === 'rejected'), [], `round ${round}: every call succeeds`)
      if (withLocks) t.equal(service.state.rotations, round, `round ${round}: one rotation`)
    }
    t.equal(service.state.revoked, false, 'the session lives')
    t.same(tabs.flatMap(tab => tab.ended), [], 'nobody is logged out')
  })
}

t.test('a tab whose call left before another tab refreshed just retries', async t => {
  for (const locks of [createLockManager(), null]) {
    const service = createStandIn()
    const [slow, fast] = openTabs(t, service, 2, { locks }) as [Tab, Tab]
    await fast.client.login({ email: user.email, password: 'pw' })
    // A call sent in the very millisecond of another tab's sign-in is taken for the old session's.
    await settle()
    service.expire()
    // The slow tab's call carries the expired cookie, and its 401 arrives after the fast tab's refresh.
    service.delays.set('GET /users/me', 60)
    const slowCall = slow.client.me()
    await new Promise(resolve => setTimeout(resolve, 5))
    await fast.client.me()
    await slowCall
    t.equal(service.count('POST /auth/refresh'), 1, `${locks === null ? 'told by the channel' : 'told by the lock manager'}: no second refresh`)
    t.equal(service.count('GET /users/me'), 4, 'each call retried once')
  }
})

t.test('the clock set back an hour: refreshes and sign-ins stamped before it hide nothing after it (regression: no tab refreshed for the hour)', async t => {
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  for (const before of ['a refresh', 'a sign-in in another tab'] as const) {
    for (const locks of [createLockManager(), null]) {
      Date.now = realNow
      const service = createStandIn()
      const [first, second] = openTabs(t, service, 2, { locks }) as [Tab, Tab]
      await (before === 'a sign-in in another tab' ? second : first).client.login({ email: user.email, password: 'pw' })
      await settle()
      if (before === 'a refresh') {
        service.expire()
        t.same(await first.client.me(), user)
        await settle()
      }
      Date.now = () => realNow() - 3_600_000
      const rotations = service.state.rotations
      service.expire()
      t.same(await first.client.me(), user, `${before}, ${locks === null ? 'without' : 'with'} Web Locks: the call succeeds`)
      t.equal(service.state.rotations, rotations + 1, 'one refresh')
      service.expire()
      t.same(await second.client.me(), user, 'in the other tab too')
      t.equal(service.state.rotations, rotations + 2, 'one more')
      t.same([...first.ended, ...second.ended], [], 'nobody signed out')
    }
  }
})

// Regression: Infinity, or more than a timer holds, fired the timer at once: every tab refreshed on its own.
t.test('lockTimeoutMs must be a whole number of milliseconds a timer can hold', async t => {
  for (const lockTimeoutMs of [Infinity, NaN, 0, -1, 2.5, 2 ** 31]) {
    t.throws(() => { createAuthClient({ baseUrl, locks: null, lockTimeoutMs }).close() }, RangeError, String(lockTimeoutMs))
  }
  const service = createStandIn()
  const tabs = openTabs(t, service, 4, { lockTimeoutMs: 2 ** 31 - 1 })
  await tabs[0]?.client.login({ email: user.email, password: 'pw' })
  await settle()
  service.expire()
  await Promise.all(tabs.map(tab => tab.client.me()))
  t.equal(service.count('POST /auth/refresh'), 1, 'the longest one a timer holds: one refresh for every tab')
})

t.test('a lock held too long is given up after the timeout, and the refresh goes ahead', async t => {
  const service = createStandIn()
  const locks = createLockManager()
  const [tab] = openTabs(t, service, 1, { locks, lockTimeoutMs: 100, name: 'stuck' }) as [Tab]
  // A frozen tab holding the refresh lock for ever.
  let release = () => {}
  const holding = locks.request('stuck', () => new Promise<void>(resolve => { release = resolve }))
  t.teardown(() => {
    release()
    return holding
  })
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  const started = Date.now()
  t.same(await tab.client.me(), user)
  t.ok(Date.now() - started >= 100, 'waited for the lock as long as allowed')
  t.equal(service.count('POST /auth/refresh'), 1)
})

t.test('only AUTH_TOKEN_EXPIRED refreshes: any other 401 ends the session, once, in every tab', async t => {
  const service = createStandIn()
  const tabs = openTabs(t, service, 3)
  const [first] = tabs as [Tab]
  await first.client.login({ email: user.email, password: 'pw' })
  service.revoke()
  const error = await first.client.me().catch((e: unknown) => e)
  t.ok(isAuthError(error, 'AUTH_SESSION_REVOKED'), 'the call fails with the service\'s code')
  t.match(error, { status: 401 })
  await first.client.me().catch(() => {})
  await settle()
  t.equal(service.count('POST /auth/refresh'), 0, 'no refresh')
  for (const tab of tabs) t.same(tab.ended, [{ reason: 'refused', code: 'AUTH_SESSION_REVOKED' }], 'told once in each tab')
})

t.test('a refused refresh ends the session and is not tried again', async t => {
  const service = createStandIn()
  const tabs = openTabs(t, service, 2)
  const [first, second] = tabs as [Tab, Tab]
  await first.client.login({ email: user.email, password: 'pw' })
  service.expire()
  service.revoke()
  await t.rejects(first.client.me(), { code: 'AUTH_REFRESH_REVOKED', status: 401 })
  t.same(service.sent.slice(1).map(r => r.path), ['/users/me', '/auth/refresh'])
  await settle()
  t.same(second.ended, [{ reason: 'refused', code: 'AUTH_REFRESH_REVOKED' }])
})

t.test('a retry still expired is not refreshed again: no loop', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.overrides.set('GET /users/me', () => errorAnswer(401, 'AUTH_TOKEN_EXPIRED'))
  await t.rejects(tab.client.me(), { code: 'AUTH_TOKEN_EXPIRED' })
  t.same(service.sent.slice(1).map(r => r.path), ['/users/me', '/auth/refresh', '/users/me'])
  t.same(tab.ended, [], 'and no logout for it either')
})

t.test('a refresh refused by a rate limit or an outage fails the call, not the session; only a gateway\'s 502 or 504 is tried again', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1, { refreshTimeoutMs: 600 }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  service.overrides.set('POST /auth/refresh', () => errorAnswer(429, 'RATE_LIMITED', { 'retry-after': '7' }))
  await t.rejects(tab.client.me(), { code: 'RATE_LIMITED', status: 429, retryAfterSeconds: 7 })
  service.overrides.set('POST /auth/refresh', () => errorAnswer(503, 'SERVICE_UNAVAILABLE', { 'retry-after': '5' }))
  await t.rejects(tab.client.me(), { code: 'SERVICE_UNAVAILABLE', status: 503 })
  t.equal(service.count('POST /auth/refresh'), 2, 'one try each')
  service.overrides.set('POST /auth/refresh', () => new Response('<html>Bad gateway</html>', { status: 502 }))
  await t.rejects(tab.client.me(), { code: 'UNEXPECTED_RESPONSE', status: 502 })
  t.ok(service.count('POST /auth/refresh') >= 4, 'the 502 tried again within the budget')
  t.same(tab.ended, [])
  service.overrides.delete('POST /auth/refresh')
  t.same(await tab.client.me(), user, 'and the next call recovers')
})

t.test('a slow refresh is waited for three quarters of its budget (regression: every answer 5.5 s late, each try abandoned at 5 s, every tab signed out)', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1, {
    fetch: async (url, init) => {
      if (new URL(url).pathname !== '/auth/refresh') return await service.fetch(url, init)
      const { answer, land } = await service.unlanded(url, init)
      // The answer, and its cookies, arrive 5.5 s after the service acted, unless abandoned first.
      await sleep(5500, undefined, { signal: init.signal ?? undefined })
      land()
      return answer
    }
  }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  t.same(await tab.client.me(), user, 'the default budget (8 s) gives its first try 6 s')
  t.equal(service.count('POST /auth/refresh'), 1, 'one try')
  t.same(tab.ended, [])
})

t.test('a refresh that reaches nobody is tried again after a pause, within its budget: a connection lost after the service rotated logs nobody out', async t => {
  const service = createStandIn()
  let drops = 2
  const [tab] = openTabs(t, service, 1, {
    refreshTimeoutMs: 2000,
    fetch: async (url, init) => {
      if (new URL(url).pathname !== '/auth/refresh' || drops === 0) return await service.fetch(url, init)
      drops--
      // The service acts on both; the connection drops before either answer (and its cookies) arrives.
      await service.unlanded(url, init)
      throw new TypeError('network connection lost')
    }
  }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  t.same(await tab.client.me(), user, 'the third try answers, with the same successor')
  t.equal(service.count('POST /auth/refresh'), 3)
  t.equal(service.state.rotations, 1, 'one rotation')
  service.expire()
  t.same(await tab.client.me(), user, 'and the successor refreshes next time')
  t.same(tab.ended, [])
})

t.test('a try abandoned after its cookie landed: the next carries the new cookie, one try at a time, and its own cookie lands', async t => {
  const service = createStandIn()
  let refreshes = 0
  const [tab] = openTabs(t, service, 1, {
    refreshTimeoutMs: 400,
    fetch: async (url, init) => {
      if (new URL(url).pathname !== '/auth/refresh' || ++refreshes > 1) return await service.fetch(url, init)
      // The service rotates and its cookie lands; the rest of the answer never comes.
      await service.fetch(url, init)
      return await new Promise<never>((_resolve, reject) => { init.signal?.addEventListener('abort', () => { reject(new DOMException('Aborted', 'AbortError')) }) })
    }
  }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  t.same(await tab.client.me(), user)
  t.equal(refreshes, 2, 'abandoned at 300 ms for a second try')
  t.equal(service.state.rotations, 2, 'which carried the new cookie and rotated again')
  t.equal(service.jar.refresh?.generation, service.state.generation, 'and the browser holds the token the service holds')
})

t.test('an answer whose body stalls ends with the budget, not never (regression: the refresh never settled)', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1, {
    refreshTimeoutMs: 300,
    fetch: async (url, init) => {
      if (new URL(url).pathname !== '/auth/refresh') return await service.fetch(url, init)
      const signal = init.signal
      const stalled = new ReadableStream({
        start (controller) {
          controller.enqueue(new TextEncoder().encode('{"expiresIn":'))
          signal?.addEventListener('abort', () => { controller.error(signal.reason) })
        }
      })
      return new Response(stalled, { status: 200, headers: { 'content-type': 'application/json' } })
    }
  }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  const started = performance.now()
  await t.rejects(tab.client.me(), { code: 'TIMEOUT', status: 0 })
  t.ok(performance.now() - started < 2000, 'within the budget')
})

t.test('once its budget is spent, a refresh fails (TIMEOUT, or NETWORK_ERROR when nothing answered), ends nothing, and releases the lock', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1, { refreshTimeoutMs: 400 }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  // No answer ever: the one try is aborted when the budget ends.
  service.overrides.set('POST /auth/refresh', ({ signal }) => new Promise((_resolve, reject) => { signal?.addEventListener('abort', () => { reject(signal.reason) }) }))
  await t.rejects(tab.client.me(), { code: 'TIMEOUT', status: 0 })
  t.equal(service.count('POST /auth/refresh'), 2, 'abandoned at three quarters of the budget for one more try')
  service.overrides.set('POST /auth/refresh', () => { throw new TypeError('offline') })
  await t.rejects(tab.client.me(), { code: 'NETWORK_ERROR', status: 0 })
  // Pauses of 125 to 375 ms, then 250 to 750: two or three tries, none that would end past the budget.
  const offlineTries = service.count('POST /auth/refresh') - 2
  t.ok(offlineTries >= 2 && offlineTries <= 3, `tried at once and after a pause, in 400 ms (${offlineTries})`)
  // The wall clock set back an hour during the tries (an NTP step): the budget holds (regression: an hour of tries).
  const wallClock = Date.now
  t.teardown(() => { Date.now = wallClock })
  service.overrides.set('POST /auth/refresh', () => {
    Date.now = () => wallClock() - 3600_000
    throw new TypeError('offline')
  })
  const started = performance.now()
  await t.rejects(tab.client.me(), { code: 'NETWORK_ERROR', status: 0 })
  Date.now = wallClock
  t.ok(performance.now() - started < 2000, 'within its budget')
  t.ok(service.count('POST /auth/refresh') - 2 - offlineTries <= 3, 'and as few tries')
  service.overrides.delete('POST /auth/refresh')
  t.same(await tab.client.me(), user, 'the next call refreshes')
  t.same(tab.ended, [])
})

t.test('a 401 to a call sent before a logout and a new login ends nothing, in any tab', async t => {
  for (const [stale, when] of [[0, 'its call'], [1, 'its call'], [1, 'its refresh']] as const) {
    const service = createStandIn()
    // With Web Locks, a logout waits for another tab's refresh in flight (the next test).
    const tabs = openTabs(t, service, 2, when === 'its refresh' ? { locks: null } : {})
    const [first] = tabs as [Tab]
    await first.client.login({ email: user.email, password: 'pw' })
    await settle()
    // Answered after the logout: the service refuses the ended session's cookies.
    if (when === 'its refresh') {
      service.expire()
      service.delays.set('POST /auth/refresh', 200)
    } else {
      service.delays.set('GET /users/me', 200)
    }
    const call = tabs[stale]?.client.me().catch((e: unknown) => e)
    await settle()
    await first.client.logout()
    await first.client.login({ email: user.email, password: 'pw' })
    const which = `${stale === 0 ? 'this tab' : 'another tab'}, ${when}`
    t.match(await call, { code: 'SESSION_CHANGED', status: 401 }, `${which}: the old session's refusal fails the call with a code of its own (it was the service's)`)
    await settle()
    for (const tab of tabs) t.same(tab.ended, [{ reason: 'logout' }], `${which}: no session end but the logout`)
    for (const tab of tabs) t.same(await tab.client.me(), user)
  }
})

// Regression: the call was refreshed and sent again with the new session's cookies, and ran
// as whoever had signed in since (a shared device: their profile changed by the previous user's form).
// And again with the wall clock set an hour forward for the logout and the sign-in, then back: stamped with
// the other tab's clock, they passed for changes before the call (regression).
t.test('a call whose AUTH_TOKEN_EXPIRED arrives after a logout and a new login fails: not refreshed, not sent again as the new session', async t => {
  const realNow = Date.now
  t.teardown(() => { Date.now = realNow })
  for (const [stale, clock] of [[0, 'steady'], [1, 'steady'], [1, 'stepped']] as const) {
    const service = createStandIn()
    const tabs = openTabs(t, service, 2)
    const [first] = tabs as [Tab]
    await first.client.login({ email: user.email, password: 'pw' })
    await settle()
    service.expire()
    // Refused at once as expired; the answer takes its time to come back.
    service.answerDelays.set('PATCH /users/me', 200)
    const call = tabs[stale]?.client.updateMe({ profile: { displayName: 'the previous user' } }).catch((e: unknown) => e)
    await settle()
    if (clock === 'stepped') Date.now = () => realNow() + 3_600_000
    await first.client.logout()
    await first.client.login({ email: user.email, password: 'pw' })
    Date.now = realNow
    await call
    const which = `${stale === 0 ? 'this tab' : 'another tab'}, the clock ${clock}`
    t.match(await call, { code: 'SESSION_CHANGED', status: 401 }, `${which}: the call fails, with a code of its own (it was a bare AUTH_TOKEN_EXPIRED)`)
    t.equal(service.count('PATCH /users/me'), 1, `${which}: sent once, never as the new session`)
    t.equal(service.count('POST /auth/refresh'), 0, `${which}: and nothing refreshed for it`)
    await settle()
    for (const tab of tabs) t.same(tab.ended, [{ reason: 'logout' }], `${which}: no session end but the logout`)
  }
})

// Regression: a sign-in in another app sharing the service's cookies (another origin in
// CORS_ORIGINS, the admin console), which this app's tabs cannot hear: the call was refreshed
// and sent again as the new session; and, when a refresh of this app had come between the call
// and that sign-in, still sent again after the first fix (which compared the sessions the
// refreshes landed on, in the client).
t.test('a call whose token expired in a session another app replaced is refused when sent again: it names its session, and the service sees other cookies (SESSION_CHANGED)', async t => {
  const refreshers = ['the call', 'another tab, after the sign-in', 'another tab, before it', 'another call of the tab, before it'] as const
  for (const refresher of refreshers) {
    const service = createStandIn()
    const tabs = openTabs(t, service, 2)
    const [tab, sibling] = tabs as [Tab, Tab]
    const [otherApp] = openTabs(t, service, 1) as [Tab]
    await tab.client.login({ email: user.email, password: 'pw' })
    await settle()
    service.expire()
    // Refused at once as expired; the answer takes its time to come back.
    service.answerDelays.set('PATCH /users/me', 200)
    const call = tab.client.updateMe({ profile: { displayName: 'the previous user' } }).catch((e: unknown) => e)
    await settle()
    if (refresher === 'another tab, before it') t.same(await sibling.client.me(), user)
    if (refresher === 'another call of the tab, before it') t.same(await tab.client.me(), user)
    await otherApp.client.logout()
    await otherApp.client.login({ email: user.email, password: 'pw' })
    if (refresher === 'another tab, after the sign-in') {
      service.expire()
      t.same(await sibling.client.me(), user, 'the sibling\'s own call, sent in the new session, is refreshed and sent again')
    }
    const which = `refreshed by ${refresher}`
    t.match(await call, { code: 'SESSION_CHANGED', status: 401 }, `${which}: the call fails`)
    const patches = service.sent.filter(r => r.path === '/users/me' && r.method === 'PATCH')
    t.same(patches.map(r => new Headers(r.init.headers).get('x-auth-session-id')), [null, sessionIdOf(1)], `${which}: sent again naming its session, and refused`)
    t.equal(service.count('POST /auth/refresh'), 1, `${which}: one refresh`)
    await settle()
    for (const each of tabs) t.same(each.ended, [], `${which}: nothing ended in this app`)
    t.same(await tab.client.me(), user, `${which}: the tab goes on in the cookies' session`)
  }
})

// Regression: a header of the app's own of that name (analytics) failed its calls SESSION_CHANGED.
t.test('an AUTH_SESSION_MISMATCH to the app\'s own X-Auth-Session-Id is the app\'s answer: nothing ends, nothing fails as a changed session', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  const response = await tab.client.fetch('/users/me', { headers: { 'x-auth-session-id': 'analytics-7f3a' } })
  t.equal(response.status, 401)
  t.equal((await response.json() as { code: string }).code, 'AUTH_SESSION_MISMATCH')
  await settle()
  t.same(tab.ended, [])
  t.same(await tab.client.me(), user)
})

t.test('a refresh answered after a logout or a login was asked for lands first: its cookies never replace the new session\'s', async t => {
  for (const withLocks of [true, false]) {
    const service = createStandIn()
    const [tab] = openTabs(t, service, 1, withLocks ? {} : { locks: null }) as [Tab]
    await tab.client.login({ email: user.email, password: 'pw' })
    service.expire()
    // The service rotates at once; the answer, with the rotated session's cookies, is slow to arrive.
    service.answerDelays.set('POST /auth/refresh', 200)
    const call = tab.client.me().catch((e: unknown) => e)
    await settle()
    await tab.client.logout()
    await tab.client.login({ email: user.email, password: 'pw' })
    await call
    const which = withLocks ? 'with Web Locks' : 'without'
    t.same(await tab.client.me(), user, `${which}: the new session's cookies are in the jar`)
    t.same(tab.ended, [{ reason: 'logout' }], `${which}: no session end but the logout`)
  }
})

t.test('login asks for cookies, sends them, and hands no token on', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  service.overrides.set('POST /auth/login', () => Response.json({ user, expiresIn: 900, accessToken: 'eyJ.not.for.you' }))
  const result = await tab.client.login({ identifier: 'ada', password: 'pw' })
  t.same(result, { mfaRequired: false, user, expiresIn: 900 })
  const [login] = service.sent
  t.same(JSON.parse(String(login?.init.body)), { identifier: 'ada', password: 'pw', transport: 'cookie' })
  t.match(login?.init, { credentials: 'include', headers: { 'content-type': 'application/json' } })
  await t.rejects(tab.client.login({ email: user.email, password: 'wrong' }).then(() => {
    service.overrides.set('POST /auth/login', () => errorAnswer(401, 'AUTH_INVALID_CREDENTIALS'))
    return tab.client.login({ email: user.email, password: 'wrong' })
  }), { code: 'AUTH_INVALID_CREDENTIALS' })
  t.same(tab.ended, [], 'a refused login ends no session')
})

t.test('a second factor: the challenge, then /auth/mfa/verify completes the login', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  const challenge = { mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp', 'recovery_code'], expiresIn: 300 }
  service.overrides.set('POST /auth/login', () => Response.json(challenge))
  service.overrides.set('POST /auth/mfa/verify', init => {
    const body = JSON.parse(String(init.body)) as Record<string, string>
    return body.code === '123456' ? Response.json({ user, expiresIn: 900 }) : errorAnswer(401, 'MFA_CODE_INVALID')
  })
  const result = await tab.client.login({ email: user.email, password: 'pw' })
  t.same(result, challenge)
  if (!result.mfaRequired) return
  await t.rejects(tab.client.verifyMfa({ mfaToken: result.mfaToken, code: '000000' }), { code: 'MFA_CODE_INVALID', status: 401 })
  t.same(await tab.client.verifyMfa({ mfaToken: result.mfaToken, code: '123456' }), { mfaRequired: false, user, expiresIn: 900 })
  t.same(JSON.parse(String(service.sent.at(-1)?.init.body)), { mfaToken: 'mfa-opaque', code: '123456', transport: 'cookie' }, 'the body docs/second-factor.md\'s Second factor describes, asking for cookies')
  t.same(tab.ended, [])
})

t.test('a passkey sign-in asks for cookies, and a session ended before starts again in every tab', async t => {
  const service = createStandIn()
  const [first, second] = openTabs(t, service, 2) as [Tab, Tab]
  const options = { challenge: 'c2lnbi1pbg', rpId: 'example.com', userVerification: 'required', timeout: 300000, allowCredentials: [] }
  const assertion = { id: 'cred', rawId: 'cred', type: 'public-key', clientExtensionResults: {}, response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' } }
  service.overrides.set('POST /auth/passkeys/login/options', () => Response.json(options))
  service.overrides.set('POST /auth/passkeys/login/verify', () => Response.json({ user, expiresIn: 900, refreshToken: 'not.for.you' }))
  await first.client.login({ email: user.email, password: 'pw' })
  await first.client.logout()
  await settle()
  t.same(await first.client.passkeyLoginOptions(), options)
  t.same(await first.client.loginWithPasskey({ response: assertion as never }), { mfaRequired: false, user, expiresIn: 900 }, 'no token handed on')
  t.same(JSON.parse(String(service.sent.at(-1)?.init.body)), { response: assertion, transport: 'cookie' })
  t.match(service.sent.at(-1)?.init, { credentials: 'include' })
  await settle()
  service.overrides.set('GET /users/me', () => errorAnswer(401, 'AUTH_SESSION_REVOKED'))
  await t.rejects(second.client.me(), { code: 'AUTH_SESSION_REVOKED' })
  await settle()
  t.same(second.ended.at(-1), { reason: 'refused', code: 'AUTH_SESSION_REVOKED' }, 'the new session can end again: the other tab heard of the sign-in')

  service.overrides.set('POST /auth/passkeys/login/verify', () => errorAnswer(401, 'PASSKEY_INVALID'))
  await t.rejects(first.client.loginWithPasskey({ response: assertion as never }), { code: 'PASSKEY_INVALID', status: 401 })
})

t.test('a passkey as second step: its options for the challenge, then /auth/mfa/verify', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  const options = { challenge: 'c2Vjb25k', rpId: 'example.com', userVerification: 'required', timeout: 300000, allowCredentials: [{ id: 'cred', type: 'public-key' }] }
  service.overrides.set('POST /auth/mfa/webauthn/options', init => Response.json({ ...options, sent: JSON.parse(String(init.body)) }))
  t.match(await tab.client.mfaPasskeyOptions({ mfaToken: 'mfa-opaque' }), { ...options, sent: { mfaToken: 'mfa-opaque' } })
  t.same(service.sent.map(r => `${r.method} ${r.path}`), ['POST /auth/mfa/webauthn/options'])
})

t.test('logout, logout everywhere and account deletion end the session in every tab', async t => {
  for (const [end, reason] of [
    [(client: AuthClient) => client.logout(), 'logout'],
    [(client: AuthClient) => client.logoutAll(), 'logout'],
    [(client: AuthClient) => client.deleteAccount({ password: 'pw' }), 'account-deleted']
  ] as const) {
    const service = createStandIn()
    const tabs = openTabs(t, service, 2)
    await tabs[0]?.client.login({ email: user.email, password: 'pw' })
    await end((tabs[0] as Tab).client)
    await settle()
    for (const tab of tabs) t.same(tab.ended, [{ reason }], reason)
    await tabs[1]?.client.login({ email: user.email, password: 'pw' })
    await settle()
    t.same(await tabs[0]?.client.me(), user, 'signed in again from another tab')
  }
})

// Regression: a sign-in while logout everywhere or the account's deletion was under way lost
// its session to that call's answer, which clears the cookies, and was told the session had ended.
t.test('a sign-in while logout everywhere or account deletion is under way waits for it: the new session keeps its cookies, and is not told of the end', async t => {
  for (const [name, key, reason] of [['logoutAll', 'POST /auth/logout-all', 'logout'], ['deleteAccount', 'DELETE /users/me', 'account-deleted']] as const) {
    for (const where of ['this tab', 'another tab', 'another tab, without Web Locks'] as const) {
      const service = createStandIn()
      const tabs = openTabs(t, service, 2, where.endsWith('without Web Locks') ? { locks: null } : {})
      const [caller] = tabs as [Tab]
      const signer = where === 'this tab' ? caller : tabs[1] as Tab
      await caller.client.login({ email: user.email, password: 'pw' })
      await settle()
      // What the signing tab is told, in order.
      const told: string[] = []
      signer.client.onSessionEnd(() => { told.push('ended') })
      // The service acts at once; its answer, which clears the cookies, is slow to arrive.
      service.answerDelays.set(key, 60)
      const ending = name === 'logoutAll' ? caller.client.logoutAll() : caller.client.deleteAccount({ password: 'pw' })
      await sleep(10)
      await signer.client.login({ email: user.email, password: 'pw' })
      told.push('signed in')
      await ending
      await settle()
      const which = `${name}, a sign-in in ${where}`
      if (where.endsWith('without Web Locks')) {
        // Nothing holds the sign-in back, and the late answer clears its cookies; its tab is not told its session ended, all the same.
        t.same(told, ['signed in'], `${which}: no end told to the tab that signed in`)
        t.same(caller.ended, [], `${which}: nor to the tab whose call ended the session before`)
        continue
      }
      t.same(told, ['ended', 'signed in'], `${which}: the end told before the sign-in, never after`)
      t.same(caller.ended, [{ reason }], `${which}: the calling tab told once`)
      t.equal(service.jar.access?.session, 2, `${which}: the new session's cookies are kept`)
      for (const tab of tabs) t.same(await tab.client.me().catch((e: unknown) => e), user, `${which}: and every tab goes on in it`)
    }
  }
})

t.test('logout everywhere with an expired access token refreshes, then is sent again: no wait for its own lock', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1, { lockTimeoutMs: 5000 }) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  const started = performance.now()
  await tab.client.logoutAll()
  t.ok(performance.now() - started < 1000, 'at once, not after the lock timeout')
  t.same(service.sent.slice(1).map(r => `${r.method} ${r.path}`), ['POST /auth/logout-all', 'POST /auth/refresh', 'POST /auth/logout-all'])
  t.same(tab.ended, [{ reason: 'logout' }])
  t.equal(service.jar.access, null, 'the cookies cleared')
})

// Regression (the console): a tab went on naming the account it had signed in with
// after another tab signed in as someone else, and its calls ran as them; it was never told.
t.test('a sign-in in another tab is told to this tab\'s onSignIn listeners, not to the tab that signed in', async t => {
  const service = createStandIn()
  const tabs = openTabs(t, service, 3)
  const told = tabs.map(() => 0)
  tabs.forEach((tab, i) => tab.client.onSignIn(() => { told[i] = (told[i] ?? 0) + 1 }))
  const stop = tabs[2]?.client.onSignIn(() => { throw new Error('a listener that fails') })
  stop?.()
  await tabs[0]?.client.login({ email: user.email, password: 'pw' })
  await settle()
  t.same(told, [0, 1, 1], 'the other tabs, once each')
  await tabs[1]?.client.login({ email: user.email, password: 'pw' })
  await settle()
  t.same(told, [1, 1, 2])
})

// Regression: the listeners were called from the live set, so one that
// added itself again on being told ran again for the same event, for ever.
t.test('a listener that adds itself again when told waits for the next sign-in or end', async t => {
  const service = createStandIn()
  const [first, second] = openTabs(t, service, 2) as [Tab, Tab]
  let signIns = 0
  let ends = 0
  // A new listener each time, as `() => show(…)` written inline is.
  const onSignIn = () => { signIns++; if (signIns < 5) second.client.onSignIn(() => { onSignIn() }) }
  const onEnd = () => { ends++; if (ends < 5) second.client.onSessionEnd(() => { onEnd() }) }
  second.client.onSignIn(onSignIn)
  second.client.onSessionEnd(onEnd)
  await first.client.login({ email: user.email, password: 'pw' })
  await settle()
  await first.client.logout()
  await settle()
  t.same([signIns, ends], [1, 1], 'once each (five times each, before)')
})

t.test('fetch: any path of the service, the body sent again on the retry, the answer left unread', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.expire()
  const response = await tab.client.fetch('/users/me', { method: 'GET', headers: { accept: 'application/json' } })
  t.equal(response.status, 200)
  t.same(await response.json(), user)
  const expired = service.sent.filter(r => r.path === '/users/me')
  t.equal(expired.length, 2)
  t.same(expired.map(r => new Headers(r.init.headers).get('accept')), ['application/json', 'application/json'], 'the caller\'s headers both times')
  t.same(expired.map(r => new Headers(r.init.headers).get('x-auth-session-id')), [null, sessionIdOf(1)], 'the retry names the session whose token expired')
  await t.rejects(tab.client.fetch('https://elsewhere.example.com/x'), TypeError, 'never to another origin')
  await t.rejects(tab.client.fetch('//elsewhere.example.com/x'), TypeError)
})

// Regression: the error kept only code and message, so an app could not tell which prompt to show.
t.test('REAUTHENTICATION_REQUIRED carries the methods to offer; the session stays', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  service.overrides.set('POST /auth/mfa/recovery-codes', () => Response.json({
    statusCode: 403,
    code: 'REAUTHENTICATION_REQUIRED',
    error: 'Forbidden',
    message: 'Confirm it is you first',
    // 'sms': a method a newer service might add, which no prompt of this version offers.
    methods: ['password', 'totp', 'recovery_code', 'sms', 'webauthn']
  }, { status: 403 }))
  const error = await tab.client.regenerateRecoveryCodes({ currentPassword: 'pw' }).catch((e: unknown) => e)
  t.same(JSON.parse(String(service.sent.at(-1)?.init.body)), { currentPassword: 'pw' }, 'the current password goes in the body')
  t.ok(isAuthError(error, 'REAUTHENTICATION_REQUIRED'))
  t.match(error, { status: 403, methods: ['password', 'totp', 'recovery_code', 'webauthn'] })
  t.equal((error as { methods: string[] }).methods.length, 4, 'only the methods this version names')
  t.same(tab.ended, [], 'a 403 ends nothing')
  service.overrides.set('POST /auth/password/change', () => errorAnswer(403, 'INVALID_CURRENT_PASSWORD'))
  t.match(await tab.client.changePassword({ currentPassword: 'pw', newPassword: 'another passphrase' }).catch((e: unknown) => e), { code: 'INVALID_CURRENT_PASSWORD', methods: undefined }, 'no methods on another refusal')
})

t.test('no answer: NETWORK_ERROR; the caller\'s own abort stays an AbortError', async t => {
  const down = createAuthClient({ baseUrl, locks: null, fetch: async () => { throw new TypeError('fetch failed') } })
  t.teardown(() => { down.close() })
  const error = await down.me().catch((e: unknown) => e)
  t.match(error, { name: 'AuthError', code: 'NETWORK_ERROR', status: 0, cause: { message: 'fetch failed' } })
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await t.rejects(tab.client.fetch('/users/me', { signal: AbortSignal.abort() }), { name: 'AbortError' })
})

t.test('a listener that throws stops no other', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  const thrown: unknown[] = []
  const onError = (error: unknown) => { thrown.push(error) }
  process.on('uncaughtException', onError)
  t.teardown(() => { process.off('uncaughtException', onError) })
  const stop = tab.client.onSessionEnd(() => { throw new Error('listener bug') })
  await tab.client.login({ email: user.email, password: 'pw' })
  await tab.client.logout()
  await settle()
  t.same(tab.ended, [{ reason: 'logout' }])
  t.match(thrown, [{ message: 'listener bug' }])
  stop()
})

// Regression: an async listener whose call failed (onSignIn(async () => show(await auth.me()))) left an unhandled rejection.
t.test('an async listener that rejects is reported as one that throws, and stops no other', async t => {
  const service = createStandIn()
  const [first, second] = openTabs(t, service, 2) as [Tab, Tab]
  const thrown: unknown[] = []
  const rejected: unknown[] = []
  const onError = (error: unknown) => { thrown.push(error) }
  const onRejection = (error: unknown) => { rejected.push(error) }
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onRejection)
  t.teardown(() => {
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onRejection)
  })
  second.client.onSignIn(async () => { throw new Error('sign-in listener bug') })
  second.client.onSessionEnd(async () => { throw new Error('session end listener bug') })
  let signIns = 0
  second.client.onSignIn(() => { signIns++ })
  await first.client.login({ email: user.email, password: 'pw' })
  await settle()
  await first.client.logout()
  await settle()
  t.equal(signIns, 1, 'the next listener told')
  t.same(second.ended, [{ reason: 'logout' }])
  t.match(thrown, [{ message: 'sign-in listener bug' }, { message: 'session end listener bug' }])
  t.same(rejected, [], 'no unhandled rejection')
})

t.test('retryAfterSeconds is read on a 429 or a 503 only, as its doc says', async t => {
  const service = createStandIn()
  const [tab] = openTabs(t, service, 1) as [Tab]
  await tab.client.login({ email: user.email, password: 'pw' })
  for (const [status, code, kept] of [[429, 'RATE_LIMITED', 30], [503, 'SERVICE_UNAVAILABLE', 30], [400, 'VALIDATION_FAILED', undefined], [403, 'REAUTHENTICATION_REQUIRED', undefined], [500, 'INTERNAL_ERROR', undefined]] as const) {
    service.overrides.set('PATCH /users/me', () => errorAnswer(status, code, { 'retry-after': '30' }))
    const error = await tab.client.updateMe({ profile: { displayName: 'Ada' } }).catch((e: unknown) => e)
    t.match(error, { code, status }, String(status))
    t.equal((error as { retryAfterSeconds: unknown }).retryAfterSeconds, kept, `${status}: ${String(kept)}`)
  }
  service.overrides.set('PATCH /users/me', () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'retry-after': '30' } }))
  t.match(await tab.client.updateMe({ profile: { displayName: 'Ada' } }).catch((e: unknown) => e), { code: 'UNEXPECTED_RESPONSE', status: 502, retryAfterSeconds: undefined }, 'a gateway\'s 502')
})

// Regression: a call sent before a reauthentication, whose token had expired, refreshed when its
// answer came, and the refresh's access cookie took the place of the reauthentication's, the only
// one that counts as fresh: the change the user had just proven themselves for was refused again.
t.test('a call that expired across a reauthentication, in this tab or another, goes out again with the reauthentication\'s cookie, not a refreshed one', async t => {
  for (const [reauthenticating, calling] of [[0, 0], [1, 0]] as const) {
    const service = createStandIn()
    const tabs = openTabs(t, service, 2)
    await tabs[0]?.client.login({ email: user.email, password: 'pw' })
    await settle()
    service.expire()
    // The reauthentication sets the access cookie, as the service does.
    service.overrides.set('POST /auth/reauthenticate', () => {
      service.jar.access = { session: service.state.session, generation: service.state.generation + 7 }
      return Response.json({ expiresIn: 900 })
    })
    service.answerDelays.set('GET /users/me', 100)
    const expired = tabs[calling]?.client.me()
    await sleep(10)
    await tabs[reauthenticating]?.client.reauthenticate({ password: 'pw' })
    await expired
    t.equal(service.count('POST /auth/refresh'), 0, 'no refresh')
    t.equal(service.count('GET /users/me'), 2, 'sent again')
    t.equal(service.jar.access?.generation, 7, 'the reauthentication\'s cookie stays')
  }
})
