// CSRF refusals and CORS with credentials, driven by PUBLIC_URL and CORS_ORIGINS.
import t from 'tap'
import { MAX_PARAM_LENGTH } from '../../src/plugins/error-handler.js'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, loginWithCookies, registerAccount } from '../helpers/users.js'

const { app, prisma } = await buildTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com', CORS_ORIGINS: 'https://app.example.com' } })
const account = await registerAccount(app)

t.test('cookie-authenticated writes from a foreign site are refused', async t => {
  const { cookie } = await loginWithCookies(app, account)
  for (const headers of [
    { origin: 'https://evil.example' },
    { origin: 'null' },
    { origin: 'https://app.example.com.evil.example' },
    { origin: 'http://app.example.com' },
    { origin: 'https://app.example.com:8443' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' }
  ]) {
    for (const url of ['/auth/refresh', '/auth/logout', '/auth/logout-all']) {
      const response = await app.inject({ method: 'POST', url, headers: { cookie, ...headers } })
      t.equal(response.statusCode, 403, `${url} ${JSON.stringify(headers)}`)
      t.same(response.json(), { statusCode: 403, code: 'CSRF_REJECTED', error: 'Forbidden', message: 'Cross-site request refused: its origin is neither PUBLIC_URL nor one of CORS_ORIGINS, or, for the admin API with cookies, not PUBLIC_URL' })
    }
    const patch = await app.inject({ method: 'PATCH', url: '/users/me', headers: { cookie, ...headers }, payload: { profile: { bio: 'pwned' } } })
    t.equal(patch.statusCode, 403)
  }
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { cookie } })
  t.equal(me.json().profile.bio, null, 'nothing changed')
})

t.test('what the router refuses before any hook is readable by a listed origin\'s page (regression: no CORS headers, a network error there)', async t => {
  const path = `/admin/users/${'a'.repeat(MAX_PARAM_LENGTH + 1)}`
  const listed = await app.inject({ method: 'GET', url: path, headers: { origin: 'https://app.example.com' } })
  t.equal(listed.statusCode, 400)
  t.equal(listed.json().code, 'VALIDATION_FAILED')
  t.equal(listed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(listed.headers['access-control-allow-credentials'], 'true')
  t.match(listed.headers['access-control-expose-headers'], /x-request-id/)
  t.match(listed.headers.vary, /Origin/)
  const foreign = await app.inject({ method: 'GET', url: path, headers: { origin: 'https://evil.example' } })
  t.equal(foreign.statusCode, 400)
  t.notOk(foreign.headers['access-control-allow-origin'], 'nothing for an origin not listed')
})

t.test('a listed origin\'s page may name the session a call is meant for (X-Auth-Session-Id, sent on a retry after a refresh)', async t => {
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/users/me',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type, x-auth-session-id' }
  })
  t.equal(preflight.statusCode, 204)
  t.match(preflight.headers['access-control-allow-headers'], /x-auth-session-id/)
})

// Regression: a page of a listed app, on a browser where an admin was signed in to the console,
// read every account and deactivated one as that admin (SameSite=Lax sends the cookies there).
t.test('the admin API takes an admin\'s cookies from the service\'s own pages only; a Bearer token from anywhere', async t => {
  const admin = await registerAccount(app)
  await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'admin', emailVerifiedAt: new Date() } })
  const { cookie } = await loginWithCookies(app, admin)
  const { accessToken } = await loginWithBody(app, admin)
  const listed = { cookie, origin: 'https://app.example.com' }
  for (const [method, url] of [['GET', '/admin/users'], ['GET', '/admin/audit'], ['PATCH', `/admin/users/${account.user.id}`], ['POST', `/admin/users/${account.user.id}/sessions/revoke`]] as const) {
    const response = await app.inject({ method, url, headers: listed, ...(method === 'PATCH' ? { payload: { isActive: false } } : {}) })
    t.equal(response.statusCode, 403, `${method} ${url} from a listed app, by cookie`)
    t.equal(response.json().code, 'CSRF_REJECTED')
    t.equal(response.headers['access-control-allow-origin'], 'https://app.example.com', 'a refusal the page can read')
  }
  for (const site of ['same-site', 'cross-site']) {
    t.equal((await app.inject({ method: 'GET', url: '/admin/users?q=ada', headers: { cookie, 'sec-fetch-site': site } })).json().code, 'CSRF_REJECTED', `a read without Origin (an <img>, a no-cors fetch), Sec-Fetch-Site ${site}`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { cookie, 'sec-fetch-site': 'same-origin' } })).statusCode, 200, 'the console\'s own read, named same-origin')
  t.equal((await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })).isActive, true, 'nothing changed')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: listed })).statusCode, 200, 'the admin\'s own account stays the listed app\'s to use')
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { cookie } })).statusCode, 200, 'the console\'s own reads (no Origin)')
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { cookie, origin: 'https://auth.example.com' } })).statusCode, 200, 'and its own origin')
  t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: { authorization: `Bearer ${accessToken}`, origin: 'https://app.example.com' } })).statusCode, 200, 'a Bearer token from a listed app')
})

t.test('login and register from a foreign site are refused (login CSRF)', async t => {
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { origin: 'https://evil.example' }, payload: { email: account.email, password: account.password } })
  t.equal(login.statusCode, 403)
  t.same(login.cookies, [])
  const register = await app.inject({ method: 'POST', url: '/auth/register', headers: { 'sec-fetch-site': 'cross-site' }, payload: { email: 'x@example.com', password: 'a fine passphrase 123' } })
  t.equal(register.statusCode, 403)
})

t.test('the service’s own origin, listed origins and non-browser clients pass', async t => {
  const { cookie } = await loginWithCookies(app, account)
  for (const headers of [{ origin: 'https://auth.example.com' }, { origin: 'https://app.example.com', 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, {}]) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { cookie, ...headers }, payload: { profile: { bio: 'ok' } } })
    t.equal(response.statusCode, 200, JSON.stringify(headers))
  }
})

t.test('Bearer requests are not affected', async t => {
  const { accessToken } = await loginWithBody(app, account)
  const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}`, origin: 'https://evil.example' }, payload: { profile: { bio: 'bearer' } } })
  t.equal(response.statusCode, 200)
})

// Regression: any Authorization header passed, and a browser attaches Basic or Negotiate
// credentials by itself to a site behind HTTP authentication: a cross-site page's form could
// then rotate the session's cookies, or sign the browser in to the attacker's account.
t.test('an Authorization header of another scheme is checked like none', async t => {
  const { cookie } = await loginWithCookies(app, account)
  for (const authorization of ['Basic dXNlcjpwYXNz', 'Negotiate YIIB', 'x']) {
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, authorization, origin: 'https://evil.example' } })
    t.equal(refresh.statusCode, 403, `${authorization}: refresh`)
    t.equal(refresh.json().code, 'CSRF_REJECTED')
    t.same(refresh.cookies, [], 'no cookie rotated')
    const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { authorization, 'sec-fetch-site': 'cross-site' }, payload: { email: account.email, password: account.password } })
    t.equal(login.statusCode, 403, `${authorization}: login`)
  }
})

// Regression: `Authorization: Bearer junk` let a cross-site refresh past the check, and the
// refresh cookie beside it rotated the session; a logout so sent cleared the cookies.
t.test('a Bearer header passes the check only because the cookies beside it are then not read', async t => {
  const { cookie } = await loginWithCookies(app, account)
  const headers = { cookie, authorization: 'Bearer junk', origin: 'https://evil.example' }
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers })
  t.equal(refresh.statusCode, 401)
  t.equal(refresh.json().code, 'AUTH_REQUIRED')
  t.same(refresh.cookies, [], 'no cookie rotated')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers })
  t.equal(logout.statusCode, 401)
  t.equal(logout.json().code, 'AUTH_TOKEN_INVALID')
  t.same(logout.cookies, [], 'no cookie cleared')
  const own = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, origin: 'https://auth.example.com' } })
  t.equal(own.statusCode, 200, 'the session is intact')
})

// A Referer alone is not judged (docs/api.md, "Cross-origin requests and CSRF"): a forging page sends
// none, and clients that forward one, or add one on a redirect, are not browsers.
t.test('without Origin or Sec-Fetch-Site, a Referer is not judged: the client is not a browser', async t => {
  const { cookie } = await loginWithCookies(app, account)
  for (const referer of ['https://evil.example/x', 'http://auth.example.com/']) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { cookie, referer }, payload: { profile: { bio: 'referer' } } })
    t.equal(response.statusCode, 200, referer)
  }
  const withOrigin = await app.inject({ method: 'PATCH', url: '/users/me', headers: { cookie, referer: 'https://app.example.com/', origin: 'https://evil.example' }, payload: { profile: { bio: 'referer' } } })
  t.equal(withOrigin.statusCode, 403, 'an Origin is judged, whatever the Referer says')
})

t.test('CORS: credentials for listed origins only', async t => {
  const preflight = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(preflight.headers['access-control-allow-credentials'], 'true')
  const foreign = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(foreign.headers['access-control-allow-origin'], undefined)
  // Regression: 405 METHOD_NOT_ALLOWED, which pointed the app's developer at the method.
  t.equal(foreign.statusCode, 403)
  t.match(foreign.json(), { code: 'CSRF_REJECTED', message: /neither PUBLIC_URL nor one of CORS_ORIGINS/ })
  const own = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { origin: 'https://auth.example.com', 'access-control-request-method': 'POST' } })
  t.not(own.statusCode, 403, 'the service\'s own origin is not told it is neither PUBLIC_URL nor listed')
  const bare = await app.inject({ method: 'OPTIONS', url: '/auth/refresh' })
  t.not(bare.statusCode, 403, 'an OPTIONS that is no preflight is not refused as one')
  // Regression: @fastify/cors's plain-text 400 "Invalid Preflight Request", outside the error shape.
  const half = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: 'https://app.example.com' } })
  t.notMatch(half.body, /Invalid Preflight Request/)
  t.ok(half.statusCode < 300 || half.json().code !== undefined, `${half.statusCode}: a preflight's answer, or one in the error shape`)
  const simple = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } })
  t.equal(simple.headers['access-control-allow-origin'], undefined)
})
