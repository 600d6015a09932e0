// POST /auth/refresh: rotation, reuse detection, the grace window, races, expiry, and both transports.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { dropConnectionOf, whileHeld } from '../helpers/locks.js'
import { statementsDuring } from '../helpers/statements.js'
import { loginWithBody, loginWithCookies, registerAccount } from '../helpers/users.js'

// No settings refresh during the test that counts the statements a refresh sends.
const env = { ACCESS_TOKEN_TTL_SECONDS: '300', REFRESH_TOKEN_IDLE_TTL_SECONDS: '600', SESSION_ABSOLUTE_TTL_SECONDS: '1800', REFRESH_REUSE_GRACE_SECONDS: '10', SETTINGS_REFRESH_SECONDS: '300' }
const { app, prisma, pool, clock, database } = await buildTestApp(t, { env })

const refreshWithBody = (refreshToken: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
const sessionIdOf = (refreshToken: string) => refreshToken.split('.')[0] as string

t.test('body transport: rotates, and the new tokens work', async t => {
  const account = await registerAccount(app)
  const first = await loginWithBody(app, account)
  const response = await refreshWithBody(first.refreshToken)
  t.equal(response.statusCode, 200)
  t.same(response.cookies, [], 'answered in the body only')
  t.equal(response.headers['cache-control'], 'no-store')
  const body = response.json()
  t.same(Object.keys(body).sort(), ['accessToken', 'expiresIn', 'refreshToken', 'sessionId', 'tokenType'])
  t.equal(body.sessionId, sessionIdOf(first.refreshToken), 'names the session it rotated')
  t.not(body.refreshToken, first.refreshToken)
  t.match(body.refreshToken, new RegExp(`^${sessionIdOf(first.refreshToken)}\\.1\\.`))
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${body.accessToken}` } })
  t.equal(me.statusCode, 200)
  const next = await refreshWithBody(body.refreshToken)
  t.equal(next.statusCode, 200, 'the successor rotates in turn')
})

t.test('cookie transport: answered with cookies only, Max-Age from the session', async t => {
  const account = await registerAccount(app)
  const { cookie, response: login } = await loginWithCookies(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(response.statusCode, 200)
  // The session it rotated, which a page cannot read from its HttpOnly cookies: a client tells by it that they changed hands.
  t.same(response.json(), { sessionId: login.json().sessionId, expiresIn: 300 })
  const session = await prisma.session.findFirstOrThrow({ where: { userId: account.user.id } })
  t.equal(login.json().sessionId, session.id, 'the login named the same session')
  t.notMatch(response.body, /Token/)
  const refresh = response.cookies.find(c => c.name === '__Host-refresh_token')
  t.match(refresh, { path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge: 600 })
  t.notOk(refresh?.domain, 'host-only')
  t.match(response.cookies.find(c => c.name === '__Host-access_token'), { path: '/', maxAge: 600 }, 'the access cookie outlives its token, until the session ends')
})

// A page of a sibling subdomain can set a `__Secure-` cookie for the parent domain with a
// longer path, which the browser sends first; it cannot set a `__Host-` one (regression: the
// refresh cookie was `__Secure-refresh_token`, Path /auth, and the planted one was used).
t.test('a refresh cookie planted by a sibling subdomain is never read', async t => {
  const attacker = await loginWithCookies(app, await registerAccount(app))
  const planted = attacker.response.cookies.find(c => c.name.endsWith('refresh_token'))?.value ?? ''
  const alone = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `__Secure-refresh_token=${planted}`, 'sec-fetch-site': 'same-origin' } })
  t.equal(alone.statusCode, 401, 'no session is fixed on a browser that had none')
  t.same(alone.cookies, [])
  const owner = await registerAccount(app)
  const victim = await loginWithCookies(app, owner)
  const both = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `__Secure-refresh_token=${planted}; ${victim.cookie}`, 'sec-fetch-site': 'same-origin' } })
  t.equal(both.statusCode, 200)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { cookie: both.cookies.map(c => `${c.name}=${c.value}`).join('; ') } })
  t.equal(me.json().id, owner.user.id, 'the victim stays in their own session')
})

t.test('a body token wins over the cookie, and the answer goes in the body', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const mobile = await loginWithBody(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie }, payload: { refreshToken: mobile.refreshToken } })
  t.equal(response.statusCode, 200)
  t.same(response.cookies, [])
  t.equal(sessionIdOf(response.json().refreshToken), sessionIdOf(mobile.refreshToken))
})

// Regression: the refresh cookie was read beside any Authorization header, a Bearer one too,
// which the CSRF check lets through as the request's credential (test/plugins/cross-origin.test.ts).
t.test('a Bearer header wins over the refresh cookie: without a body token, 401 AUTH_REQUIRED and the cookies kept; another scheme leaves the cookie to refresh', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const mobile = await loginWithBody(app, account)
  for (const authorization of ['Bearer junk', `Bearer ${mobile.accessToken}`]) {
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, authorization, 'sec-fetch-site': 'same-origin' } })
    t.equal(response.statusCode, 401, authorization.slice(0, 12))
    t.equal(response.json().code, 'AUTH_REQUIRED')
    t.same(response.cookies, [], 'the cookies were not read, and are left')
  }
  const withBody = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, authorization: `Bearer ${mobile.accessToken}` }, payload: { refreshToken: mobile.refreshToken } })
  t.equal(withBody.statusCode, 200, 'a body token still counts')
  t.same(withBody.cookies, [])
  const basic = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, authorization: 'Basic dXNlcjpwYXNz', 'sec-fetch-site': 'same-origin' } })
  t.equal(basic.statusCode, 200, 'Basic is not the service\'s: a browser behind HTTP authentication refreshes by its cookie')
  t.equal(basic.cookies.length, 2)
})

t.test('within the grace window the previous token gets the same successor', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const first = (await refreshWithBody(refreshToken)).json()
  clock.advance(5)
  const retry = await refreshWithBody(refreshToken)
  t.equal(retry.statusCode, 200, 'a lost response retried recovers')
  t.equal(retry.json().refreshToken, first.refreshToken, 'the same successor, not a second one')
  t.equal((await refreshWithBody(first.refreshToken)).statusCode, 200, 'and the successor works')
})

t.test('10 concurrent refreshes with one token: one successor for all, the session survives', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const responses = await Promise.all(Array.from({ length: 10 }, () => refreshWithBody(refreshToken)))
  t.same(responses.map(r => r.statusCode), Array(10).fill(200), 'never a 500, never a refusal')
  const successors = new Set(responses.map(r => r.json().refreshToken))
  t.equal(successors.size, 1, 'every caller got the same successor')
  const session = await prisma.session.findUniqueOrThrow({ where: { id: sessionIdOf(refreshToken) } })
  t.equal(session.generation, 1, 'rotated exactly once')
  t.equal(session.revokedAt, null)
  t.equal((await refreshWithBody([...successors][0] as string)).statusCode, 200)
})

t.test('after the window, a retired token is reuse: the whole session ends', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const successor = (await refreshWithBody(refreshToken)).json()
  clock.advance(11)
  const replay = await refreshWithBody(refreshToken)
  t.equal(replay.statusCode, 401)
  t.equal(replay.json().code, 'AUTH_REFRESH_REUSED')
  t.equal(replay.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const session = await prisma.session.findUniqueOrThrow({ where: { id: sessionIdOf(refreshToken) } })
  t.equal(session.revokedReason, 'refresh_reuse')
  const thief = await refreshWithBody(successor.refreshToken)
  t.equal(thief.json().code, 'AUTH_REFRESH_REVOKED', 'the successor died with the session')
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${successor.accessToken}` } })
  t.equal(me.json().code, 'AUTH_SESSION_REVOKED')
})

// Regression: the entry was written after the session ended, and a stalled or dropped statement
// lost it (only logged): a theft remedied with no trace in the audit trail.
t.test('a reuse ends the session and records it together: one whose entry cannot be written changes nothing, and the next replay does both', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const successor = (await refreshWithBody(refreshToken)).json()
  clock.advance(11)
  const writingEntry = '%INSERT INTO%"AuditEvent"%'
  const cutShort = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('LOCK TABLE "AuditEvent" IN EXCLUSIVE MODE'),
    waitingStatement: writingEntry,
    meanwhile: dropConnectionOf(pool, writingEntry)
  }, async () => await refreshWithBody(refreshToken))
  t.equal(cutShort.statusCode, 503)
  const audited = async () => await prisma.auditEvent.count({ where: { action: 'refresh.reuse_detected', subjectId: account.user.id } })
  t.same([(await prisma.session.findUniqueOrThrow({ where: { id: sessionIdOf(refreshToken) } })).revokedAt, await audited()], [null, 0], 'neither ended nor recorded')
  t.equal((await refreshWithBody(refreshToken)).json().code, 'AUTH_REFRESH_REUSED')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sessionIdOf(refreshToken) } })).revokedReason, 'refresh_reuse')
  t.equal(await audited(), 1, 'ended, and recorded once')
  t.equal((await refreshWithBody(successor.refreshToken)).json().code, 'AUTH_REFRESH_REVOKED')
})

// Regression: a rotation stamped ahead of the clock (set back since, or by an instance whose
// clock runs ahead) accepted the retired token for as long as the step, grace window 0 or not.
t.test('a rotation stamped ahead of the clock opens the grace window no wider', async t => {
  const account = await registerAccount(app)
  const first = await loginWithBody(app, account)
  clock.advance(300)
  t.equal((await refreshWithBody(first.refreshToken)).statusCode, 200)
  clock.advance(-295)
  const replay = await refreshWithBody(first.refreshToken)
  t.equal(replay.statusCode, 401, 'a replay 295 s "before" the rotation is reuse')
  t.equal(replay.json().code, 'AUTH_REFRESH_REUSED')
  const second = await loginWithBody(app, account)
  clock.advance(5)
  t.equal((await refreshWithBody(second.refreshToken)).statusCode, 200)
  clock.advance(-5)
  t.equal((await refreshWithBody(second.refreshToken)).statusCode, 200, 'stamped a few seconds ahead, within the window: the same successor')
})

t.test('a token two generations old is reuse even inside the window', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const second = (await refreshWithBody(refreshToken)).json().refreshToken
  await refreshWithBody(second)
  const replay = await refreshWithBody(refreshToken)
  t.equal(replay.json().code, 'AUTH_REFRESH_REUSED')
})

t.test('grace window 0: any replay is reuse', async t => {
  const strict = await buildTestApp(t, { env: { ...env, REFRESH_REUSE_GRACE_SECONDS: '0' } })
  const account = await registerAccount(strict.app)
  const { refreshToken } = await loginWithBody(strict.app, account)
  await strict.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  const replay = await strict.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(replay.json().code, 'AUTH_REFRESH_REUSED')
})

t.test('idle expiry, and rotation never extends the absolute limit', async t => {
  const account = await registerAccount(app)
  const idle = await loginWithBody(app, account)
  clock.advance(601)
  const expired = await refreshWithBody(idle.refreshToken)
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'AUTH_REFRESH_EXPIRED')

  let { refreshToken } = await loginWithBody(app, account)
  for (let elapsed = 0; elapsed < 1800 - 500; elapsed += 500) {
    clock.advance(500)
    const response = await refreshWithBody(refreshToken)
    t.equal(response.statusCode, 200, `still alive after ${elapsed + 500} s`)
    refreshToken = response.json().refreshToken
  }
  const session = await prisma.session.findUniqueOrThrow({ where: { id: sessionIdOf(refreshToken) } })
  t.ok(session.idleExpiresAt <= session.absoluteExpiresAt, 'idle expiry capped at the absolute one')
  clock.advance(500)
  const dead = await refreshWithBody(refreshToken)
  t.equal(dead.json().code, 'AUTH_REFRESH_EXPIRED', 'the absolute limit holds despite constant use')
})

t.test('malformed, unknown and forged tokens: 401 AUTH_REFRESH_INVALID, and nothing revoked', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  const [sid, generation, mac] = refreshToken.split('.') as [string, string, string]
  const forgedMac = `${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`
  // Other spellings of the genuine MAC: a token has one form only (regression: each was taken).
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const unusedBitFlipped = `${mac.slice(0, -1)}${alphabet[alphabet.indexOf(mac.at(-1) ?? 'A') ^ 1] ?? ''}`
  const respelled = [`${mac}=`, `${mac.slice(0, 20)}!${mac.slice(20)}`, `${mac} `, unusedBitFlipped, mac.replaceAll('-', '+').replaceAll('_', '/')].filter(other => other !== mac)
  for (const token of ['garbage', `${sid}.0`, `${sid}.x.${mac}`, `${sid}.${generation}.${forgedMac}`, `${sid}.0.${mac}.extra`, `00000000-0000-4000-8000-000000000000.0.${mac}`, `${sid}.5.${mac}`, ...respelled.map(other => `${sid}.${generation}.${other}`)]) {
    const response = await refreshWithBody(token)
    t.equal(response.statusCode, 401, token.slice(0, 50))
    t.equal(response.json().code, 'AUTH_REFRESH_INVALID')
  }
  const session = await prisma.session.findUniqueOrThrow({ where: { id: sid } })
  t.equal(session.revokedAt, null, 'a forged token cannot end a session')
  t.equal((await refreshWithBody(refreshToken)).statusCode, 200)
})

t.test('no token at all: 401, and bad bodies: 400', async t => {
  const none = await app.inject({ method: 'POST', url: '/auth/refresh' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'AUTH_REQUIRED')
  for (const payload of [{ refreshToken: '' }, { refreshToken: 5 }, { token: 'x' }, { refreshToken: 'x'.repeat(10_000) }]) {
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', payload })
    t.equal(response.statusCode, 400, JSON.stringify(payload).slice(0, 40))
  }
})

t.test('a refused refresh cookie is cleared', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  await prisma.user.update({ where: { id: account.user.id }, data: { isActive: false } })
  const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie } })
  t.equal(response.json().code, 'AUTH_REFRESH_REVOKED', 'a deactivated user cannot refresh')
  t.ok(response.cookies.length === 2 && response.cookies.every(c => c.value === '' && c.maxAge === 0), 'both cookies cleared')
})

t.test('a refresh refused for another reason than its token keeps the cookies: a cross-site request', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  // A page of a sibling origin (same site, not in CORS_ORIGINS) posting with the user's cookies.
  const crossSite = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, origin: 'https://sibling.example.com' } })
  t.equal(crossSite.json().code, 'CSRF_REJECTED')
  t.same(crossSite.cookies, [], 'a cross-site request cannot sign the browser out (a 429 neither: test/plugins/rate-limits.test.ts)')
})

t.test('a deleted user cannot refresh', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  await prisma.user.delete({ where: { id: account.user.id } })
  const response = await refreshWithBody(refreshToken)
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_REFRESH_INVALID')
})

t.test('a role change reaches the access token at the next refresh', async t => {
  const account = await registerAccount(app)
  const { refreshToken } = await loginWithBody(app, account)
  await prisma.user.update({ where: { id: account.user.id }, data: { role: 'admin' } })
  const { accessToken } = (await refreshWithBody(refreshToken)).json()
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString())
  t.equal(claims.role, 'admin')
})

t.test('a session refreshed before rotates in one statement, and every rule still holds on that path', async t => {
  const account = await registerAccount(app)
  const first = await loginWithBody(app, account)
  const second = (await refreshWithBody(first.refreshToken)).json()
  let third: { refreshToken: string } = { refreshToken: '' }
  const sent = await statementsDuring(pool, async () => { third = (await refreshWithBody(second.refreshToken)).json() })
  // The outbox delivers the registration's mail, or polls, on the same pool meanwhile: not the refresh's.
  t.same(sent.filter(name => name?.startsWith('outbox.') !== true), ['refresh.rotate'], 'one round trip')

  const [sid, generation, mac] = third.refreshToken.split('.') as [string, string, string]
  const forged = await refreshWithBody(`${sid}.${generation}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`)
  t.equal(forged.json().code, 'AUTH_REFRESH_INVALID', 'a forged token of the current generation')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: sid } })).generation, Number(generation), 'changed nothing')

  const fourth = (await refreshWithBody(third.refreshToken)).json()
  t.same((await refreshWithBody(third.refreshToken)).json().refreshToken, fourth.refreshToken, 'the grace window still gives the same successor')
  await prisma.user.update({ where: { id: account.user.id }, data: { role: 'admin' } })
  const fifth = (await refreshWithBody(fourth.refreshToken)).json()
  t.equal(JSON.parse(Buffer.from(fifth.accessToken.split('.')[1], 'base64url').toString()).role, 'admin', 'the current role')

  await prisma.user.update({ where: { id: account.user.id }, data: { isActive: false } })
  t.equal((await refreshWithBody(fifth.refreshToken)).json().code, 'AUTH_REFRESH_REVOKED', 'a deactivated user')
  await prisma.user.update({ where: { id: account.user.id }, data: { isActive: true } })
  clock.advance(601)
  t.equal((await refreshWithBody(fifth.refreshToken)).json().code, 'AUTH_REFRESH_EXPIRED', 'an idle session')

  const other = await loginWithBody(app, account)
  const next = (await refreshWithBody(other.refreshToken)).json()
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: next.refreshToken } })
  t.equal((await refreshWithBody(next.refreshToken)).json().code, 'AUTH_REFRESH_REVOKED', 'a session logged out')
})

t.test('a rotation is a heap-only update: no column it rewrites is in an index, and pages keep room for it', async t => {
  const rewritten = ['generation', 'rotatedAt', 'lastUsedAt', 'idleExpiresAt', 'ip']
  const { rows: indexed } = await pool.query<{ column: string }>(`
    SELECT DISTINCT a.attname AS column FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indrelid = '"Session"'::regclass`)
  t.same(indexed.map(row => row.column).filter(column => rewritten.includes(column)), [], `indexed: ${indexed.map(row => row.column).join(', ')}`)
  const { rows: [table] } = await pool.query<{ reloptions: string[] | null }>('SELECT reloptions FROM pg_class WHERE oid = \'"Session"\'::regclass')
  t.match(table?.reloptions ?? [], ['fillfactor=80'])
})
