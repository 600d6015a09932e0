// Refusals that must not log a browser out: only a dead refresh token clears the cookies; CSRF, 4xx, 429 and outages keep them.
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { startTcpProxy } from '../helpers/net.js'
import { loginWithCookies, registerAccount } from '../helpers/users.js'

// Through a proxy the test can freeze: a database outage without stopping a shared server.
const database = await createTestDatabase()
t.teardown(database.drop)
const target = new URL(database.url)
const proxy = await startTcpProxy(Number(target.port))
t.teardown(proxy.close)
target.port = String(proxy.port)
const { app } = await buildTestApp(t, {
  database: { ...database, url: target.toString(), drop: async () => {} },
  env: {
    PUBLIC_URL: 'https://auth.example.com',
    RATE_LIMIT_REFRESH: '2/300',
    DATABASE_CONNECT_TIMEOUT_SECONDS: '1',
    DATABASE_QUERY_TIMEOUT_SECONDS: '1'
  }
})

type Cookies = Array<{ name: string, value: string, maxAge?: number }>
const clearsCookies = (cookies: Cookies) => cookies.some(c => c.value === '' || c.maxAge === 0)
let nextIp = 1
// Each request comes from an address of its own, out of reach of the per-ip limit, except in the test of that limit.
const fromOwnIp = () => `10.0.0.${nextIp++}`

async function browserSession () {
  const { cookie } = await loginWithCookies(app, await registerAccount(app))
  const refresh = (headers: Record<string, string> = {}, extra: Partial<InjectOptions> = {}) => app.inject({
    method: 'POST', url: '/auth/refresh', remoteAddress: fromOwnIp(), headers: { cookie, 'sec-fetch-site': 'same-origin', ...headers }, ...extra
  })
  return { cookie, refresh }
}

t.test('a cross-site refresh or logout is refused and leaves the cookies alone; the session still refreshes', async t => {
  const { cookie, refresh } = await browserSession()
  const foreign = await refresh({ origin: 'https://evil.example' })
  t.equal(foreign.json().code, 'CSRF_REJECTED')
  t.same(foreign.cookies, [], 'no Set-Cookie: a sibling site cannot log anyone out')
  for (const url of ['/auth/logout', '/auth/logout-all']) {
    const response = await app.inject({ method: 'POST', url, headers: { cookie, origin: 'https://evil.example' } })
    t.equal(response.json().code, 'CSRF_REJECTED', url)
    t.same(response.cookies, [], `${url}: no Set-Cookie`)
  }
  const own = await refresh()
  t.equal(own.statusCode, 200, 'the session is intact')
  t.equal(own.cookies.length, 2)
})

t.test('bad requests (400, 415) leave the cookies alone', async t => {
  const { refresh } = await browserSession()
  const refusals = [
    await refresh({ 'content-type': 'application/json' }, { payload: '{"refreshToken":' }),
    await refresh({ 'content-type': 'application/json' }, { payload: JSON.stringify({ unexpected: true }) }),
    await refresh({ 'content-type': 'application/json' }, { payload: 'null' }),
    await refresh({ 'content-type': 'text/plain' }, { payload: 'x' })
  ]
  t.same(refusals.map(r => r.statusCode), [400, 400, 400, 415])
  for (const response of refusals) t.same(response.cookies, [], response.json().code)
  t.equal((await refresh()).statusCode, 200)
})

t.test('a rate-limited refresh (429) leaves the cookies alone', async t => {
  const { refresh } = await browserSession()
  const ip = fromOwnIp()
  const statuses: number[] = []
  let limited
  for (let i = 0; i < 3; i++) {
    const response = await refresh({}, { remoteAddress: ip })
    statuses.push(response.statusCode)
    if (response.statusCode === 429) limited = response
  }
  t.same(statuses, [200, 200, 429])
  t.equal(limited?.json().code, 'RATE_LIMITED')
  t.same(limited?.cookies, [], 'a throttled browser keeps its session')
})

t.test('a database outage during a refresh: 503, cookies kept, and the same cookies refresh once it is back', async t => {
  const { refresh } = await browserSession()
  proxy.freeze()
  const down = await refresh()
  proxy.thaw()
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'SERVICE_UNAVAILABLE')
  t.same(down.cookies, [], 'no Set-Cookie while the database is away')
  let back = await refresh()
  // The pool may hand out the connection dropped by the freeze once more before noticing.
  if (back.statusCode === 503) back = await refresh()
  t.equal(back.statusCode, 200, 'the session the browser still holds refreshes')
  t.equal(back.cookies.length, 2)
})

t.test('a dead refresh token clears the cookies', async t => {
  const { cookie, refresh } = await browserSession()
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(logout.statusCode, 204)
  const revoked = await refresh()
  t.equal(revoked.json().code, 'AUTH_REFRESH_REVOKED')
  t.ok(clearsCookies(revoked.cookies), 'the browser drops a token that can never work again')
  const forged = await app.inject({
    method: 'POST', url: '/auth/refresh', remoteAddress: fromOwnIp(), headers: { cookie: '__Host-refresh_token=forged', 'sec-fetch-site': 'same-origin' }
  })
  t.equal(forged.json().code, 'AUTH_REFRESH_INVALID')
  t.ok(clearsCookies(forged.cookies))
})

t.test('a body that is JSON but not an object is 400 VALIDATION_FAILED on every route, optional bodies included', async t => {
  for (const url of ['/auth/refresh', '/auth/logout', '/auth/register', '/auth/login']) {
    for (const payload of ['null', '[]', '"s"', '42', 'true']) {
      const response = await app.inject({ method: 'POST', url, remoteAddress: fromOwnIp(), headers: { 'content-type': 'application/json' }, payload })
      t.equal(response.statusCode, 400, `${url} ${payload}`)
      t.equal(response.json().code, 'VALIDATION_FAILED', `${url} ${payload}`)
    }
  }
})
