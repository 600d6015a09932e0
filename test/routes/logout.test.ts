// POST /auth/logout and /auth/logout-all: every way of naming the session, idempotence, cookies cleared.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, generateKeyPair } from 'jose'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { whileHeld } from '../helpers/locks.js'
import { loginWithBody, loginWithCookies, registerAccount } from '../helpers/users.js'
import { generateKeyFiles } from '../../src/services/tokens/signing-keys.js'

const { app, prisma, pool, database, clock, config } = await buildTestApp(t)

const sessionIdOf = (refreshToken: string) => refreshToken.split('.')[0] as string
const isRevoked = async (id: string) => (await prisma.session.findUniqueOrThrow({ where: { id } })).revokedAt !== null
const clearsBothCookies = (cookies: Array<{ name: string, value: string, maxAge?: number }>) =>
  cookies.length === 2 && cookies.every(c => c.value === '' && c.maxAge === 0)

t.test('logout with the refresh token in the body ends that session only', async t => {
  const account = await registerAccount(app)
  const ending = await loginWithBody(app, account)
  const other = await loginWithBody(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: ending.refreshToken } })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')
  t.ok(await isRevoked(sessionIdOf(ending.refreshToken)))
  t.notOk(await isRevoked(sessionIdOf(other.refreshToken)))
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: ending.refreshToken } })
  t.equal(refresh.json().code, 'AUTH_REFRESH_REVOKED', 'the refresh token is dead')
})

t.test('logout with the Bearer access token', async t => {
  const account = await registerAccount(app)
  const tokens = await loginWithBody(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${tokens.accessToken}` } })
  t.equal(response.statusCode, 204)
  t.ok(await isRevoked(sessionIdOf(tokens.refreshToken)))
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${tokens.accessToken}` } })
  t.equal(me.json().code, 'AUTH_SESSION_REVOKED', 'routes reading the database refuse it at once')
})

// Regression: an expired access token was dropped as invalid, 204 answered, and the session and
// its refresh token lived on.
t.test('logout with an expired Bearer access token ends its session; one whose signature is not ours ends nothing', async t => {
  const account = await registerAccount(app)
  // Issued a token's lifetime ago (tokens are signed on the app's clock, checked on the real one).
  clock.advance(-(config.ACCESS_TOKEN_TTL_SECONDS + 60))
  const tokens = await loginWithBody(app, account)
  clock.advance(config.ACCESS_TOKEN_TTL_SECONDS + 60)
  const bystander = await loginWithBody(app, account)
  t.equal((await app.inject({ method: 'GET', url: '/auth/session', headers: { authorization: `Bearer ${tokens.accessToken}` } })).json().code, 'AUTH_TOKEN_EXPIRED')

  // Forged in our shape under a key we do not hold, naming the bystander's session: never trusted.
  const { privateKey } = await generateKeyPair('EdDSA')
  const claims = JSON.parse(Buffer.from(tokens.accessToken.split('.')[1] as string, 'base64url').toString())
  const forged = await new SignJWT({ ...claims, sid: bystander.sessionId }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'a-key-of-no-one' }).sign(privateKey)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${forged}` } })).statusCode, 204)
  t.notOk(await isRevoked(bystander.sessionId), 'a forged token ends nothing')

  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${tokens.accessToken}` } })
  t.equal(response.statusCode, 204)
  t.ok(await isRevoked(tokens.sessionId), 'the session the expired token names has ended')
  t.notOk(await isRevoked(bystander.sessionId))
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: tokens.refreshToken } })
  t.equal(refresh.json().code, 'AUTH_REFRESH_REVOKED', 'its refresh token is dead')
})

// Regression: a request naming another session (X-Auth-Session-Id, an app's header of that name)
// answered 204 and left the session live.
t.test('logout ends the session its token names, whatever session the request names', async t => {
  const account = await registerAccount(app)
  const tokens = await loginWithBody(app, account)
  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${tokens.accessToken}`, 'x-auth-session-id': 'analytics-7f3a' } })
  t.equal(response.statusCode, 204)
  t.ok(await isRevoked(tokens.sessionId))
})

t.test('logout with cookies clears them', async t => {
  const account = await registerAccount(app)
  const { response: login, cookie } = await loginWithCookies(app, account)
  const refreshCookie = login.cookies.find(c => c.name === '__Host-refresh_token')?.value as string
  const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(response.statusCode, 204)
  t.ok(clearsBothCookies(response.cookies))
  t.match(response.cookies.find(c => c.name === '__Host-refresh_token'), { path: '/', secure: true, httpOnly: true })
  t.ok(await isRevoked(sessionIdOf(refreshCookie)))
})

t.test('a refresh token that names no session leaves the access token to say which session ends (regression: 204, cookies cleared, the session lived on)', async t => {
  const account = await registerAccount(app)
  const { response: login } = await loginWithCookies(app, account)
  const valueOf = (name: string) => login.cookies.find(c => c.name === name)?.value as string
  const refreshCookie = valueOf('__Host-refresh_token')
  for (const junk of ['junk', `${sessionIdOf(refreshCookie)}.0.${'A'.repeat(43)}`]) {
    const cookie = `__Host-access_token=${valueOf('__Host-access_token')}; __Host-refresh_token=${junk}`
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
    t.equal(response.statusCode, 204)
    t.ok(clearsBothCookies(response.cookies))
  }
  t.ok(await isRevoked(sessionIdOf(refreshCookie)), 'the access cookie named it')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: refreshCookie } })
  t.equal(refresh.json().code, 'AUTH_REFRESH_REVOKED', 'its real refresh token is dead')

  const mobile = await loginWithBody(app, account)
  const bearer = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${mobile.accessToken}` }, payload: { refreshToken: 'stale' } })
  t.equal(bearer.statusCode, 204)
  t.ok(await isRevoked(sessionIdOf(mobile.refreshToken)), 'likewise a Bearer token beside a stale body token')
})

// Regression: an Authorization header the logout could not use (Basic, which a browser attaches
// by itself behind HTTP authentication; a Bearer token of no session) made it pass over the
// cookies: 204, the cookies cleared, and their session lived on, its refresh token working.
t.test('cookies beside another scheme end their session; beside a Bearer token of no session, the logout is refused and leaves them', async t => {
  const account = await registerAccount(app)
  for (const authorization of ['Basic dXNlcjpwYXNz', 'Negotiate YIIB']) {
    const { response: login, cookie } = await loginWithCookies(app, account)
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, authorization, 'sec-fetch-site': 'same-origin' } })
    t.equal(response.statusCode, 204, authorization)
    t.ok(clearsBothCookies(response.cookies))
    t.ok(await isRevoked(login.json().sessionId), `${authorization}: the cookies' session has ended`)
  }
  const { response: login } = await loginWithCookies(app, account)
  const accessCookie = `__Host-access_token=${login.cookies.find(c => c.name === '__Host-access_token')?.value ?? ''}`
  const byAccessCookie = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: accessCookie, authorization: 'Basic dXNlcjpwYXNz', 'sec-fetch-site': 'same-origin' } })
  t.equal(byAccessCookie.statusCode, 204)
  t.ok(await isRevoked(login.json().sessionId), 'the access cookie alone names it too')

  for (const authorization of ['Bearer junk', 'Bearer two words']) {
    const { response: login, cookie } = await loginWithCookies(app, account)
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, authorization, 'sec-fetch-site': 'same-origin' } })
    t.equal(response.statusCode, 401, authorization)
    t.equal(response.json().code, 'AUTH_TOKEN_INVALID')
    t.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.same(response.cookies, [], 'the cookies are left: their session lives')
    t.notOk(await isRevoked(login.json().sessionId), 'the header wins: the cookies are not read')
    const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
    t.equal(refresh.statusCode, 200, 'as the answer says, the session refreshes')
  }

  const { response: browser, cookie } = await loginWithCookies(app, account)
  const mobile = await loginWithBody(app, account)
  const bearer = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, authorization: `Bearer ${mobile.accessToken}`, 'sec-fetch-site': 'same-origin' } })
  t.equal(bearer.statusCode, 204)
  t.ok(await isRevoked(mobile.sessionId), 'a Bearer token of a session ends it')
  t.notOk(await isRevoked(browser.json().sessionId), 'and not the session of the cookies beside it')
  // Regression: the cookies of that other session were cleared, signing it out here only.
  t.same(bearer.cookies, [], 'nor are its cookies cleared')
  const other = await loginWithBody(app, account)
  const byBody = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie, 'sec-fetch-site': 'same-origin' }, payload: { refreshToken: other.refreshToken } })
  t.equal(byBody.statusCode, 204)
  t.ok(await isRevoked(other.sessionId), 'a body token ends its session')
  t.notOk(await isRevoked(browser.json().sessionId), 'not the cookies\' one')
  t.same(byBody.cookies, [], 'and leaves their cookies')
})

// Regression: a call that ended its caller's session by a Bearer token cleared the cookies
// beside it, another account's session, which lived on: signed out of this browser alone.
t.test('a session ended by its own Bearer token leaves the cookies beside it, another session\'s', async t => {
  const [owner, other] = [await registerAccount(app), await registerAccount(app)]
  const { response: browser, cookie } = await loginWithCookies(app, other)
  const beside = (accessToken: string) => ({ cookie, authorization: `Bearer ${accessToken}` })
  const one = await loginWithBody(app, owner)
  const revoked = await app.inject({ method: 'DELETE', url: `/auth/sessions/${one.sessionId}`, headers: beside(one.accessToken) })
  t.equal(revoked.statusCode, 204)
  t.same(revoked.cookies, [], 'its own session revoked by id')
  const all = await loginWithBody(app, owner)
  const everywhere = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: beside(all.accessToken) })
  t.equal(everywhere.statusCode, 204)
  t.same(everywhere.cookies, [], 'signed out everywhere')
  const last = await loginWithBody(app, owner)
  const deleted = await app.inject({ method: 'DELETE', url: '/users/me', headers: beside(last.accessToken), payload: { password: owner.password } })
  t.equal(deleted.statusCode, 204)
  t.same(deleted.cookies, [], 'the account deleted')
  t.notOk(await isRevoked(browser.json().sessionId), 'the cookies\' session lives')
  const byCookie = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(byCookie.statusCode, 204)
  t.ok(clearsBothCookies(byCookie.cookies), 'a call made with the cookies clears them')
})

t.test('logout with nothing, or with stale credentials, is still 204 and clears cookies', async t => {
  const none = await app.inject({ method: 'POST', url: '/auth/logout' })
  t.equal(none.statusCode, 204)
  t.ok(clearsBothCookies(none.cookies))
  const garbage = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: 'garbage' } })
  t.equal(garbage.statusCode, 204)
  const badBearer = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: 'Bearer nope' } })
  t.equal(badBearer.statusCode, 204)
  const badBody = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: 7 } })
  t.equal(badBody.statusCode, 400)
})

t.test('a logout that ends a session is audited as logout.succeeded; one that ends nothing writes nothing', async t => {
  const account = await registerAccount(app)
  const byBody = await loginWithBody(app, account)
  const byBearer = await loginWithBody(app, account)
  const allLogouts = async () => await prisma.auditEvent.count({ where: { action: 'logout.succeeded' } })
  const before = await allLogouts()
  for (const nothing of [{}, { payload: { refreshToken: 'garbage' } }, { headers: { authorization: 'Bearer nope' } }]) {
    t.equal((await app.inject({ method: 'POST', url: '/auth/logout', ...nothing })).statusCode, 204)
  }
  t.equal(await allLogouts(), before, 'no or stale credentials: nothing written')

  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: byBody.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${byBearer.accessToken}` } })
  const entries = await prisma.auditEvent.findMany({ where: { action: 'logout.succeeded', subjectId: account.user.id }, select: { actorId: true, subjectId: true, ip: true, details: true } })
  const entry = (sessionId: string) => ({ actorId: account.user.id, subjectId: account.user.id, ip: '127.0.0.1', details: { sessionId } })
  const bySession = (a: { details: unknown }, b: { details: unknown }) => JSON.stringify(a.details).localeCompare(JSON.stringify(b.details))
  t.same(entries.toSorted(bySession), [entry(byBody.sessionId), entry(byBearer.sessionId)].toSorted(bySession), 'by refresh token, by access token')

  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: byBody.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${byBearer.accessToken}` } })
  t.equal(await allLogouts(), before + 2, 'a session already ended: nothing more')
})

t.test('logout-all ends every session of the caller and no one else’s', async t => {
  const account = await registerAccount(app)
  const bystander = await registerAccount(app)
  const sessions = [await loginWithBody(app, account), await loginWithBody(app, account)]
  const theirs = await loginWithBody(app, bystander)
  const response = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${sessions[0]?.accessToken}` } })
  t.equal(response.statusCode, 204)
  t.same(response.cookies, [], 'a Bearer caller\'s: no cookie cleared')
  for (const s of sessions) t.ok(await isRevoked(sessionIdOf(s.refreshToken)))
  t.notOk(await isRevoked(sessionIdOf(theirs.refreshToken)))
  const anonymous = await app.inject({ method: 'POST', url: '/auth/logout-all' })
  t.equal(anonymous.statusCode, 401)
})

// A login ends the sessions beyond the cap holding the user's row; logout-all, ending them in
// its own order without it, deadlocked with such a login now and then (a 500 after a second).
t.test('logout-all takes its turn on the user\'s row, as logins do', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await registerAccount(app)
  const sessions = [await loginWithBody(app, account), await loginWithBody(app, account)]
  const response = await whileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR NO KEY UPDATE', [account.user.id]),
    waitingStatement: '%UPDATE "User" SET "signOutGeneration"%',
    meanwhile: async () => t.notOk(await isRevoked(sessionIdOf(sessions[1]?.refreshToken ?? '')), 'nothing ended yet')
  }, async () => await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${sessions[0]?.accessToken}` } }))
  t.equal(response.statusCode, 204, 'goes on once the row is free')
  for (const s of sessions) t.ok(await isRevoked(sessionIdOf(s.refreshToken)))
})

// A deadlock's victim is rolled back whole: a condition that passes, answered as one (regression:
// 500 INTERNAL_ERROR, as for a bug).
t.test('logout-all chosen as a deadlock\'s victim answers 503 with Retry-After, and ends nothing', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL'
}, async t => {
  const account = await registerAccount(app)
  const sessions = [await loginWithBody(app, account), await loginWithBody(app, account)]
  const held = sessionIdOf(sessions[1]?.refreshToken ?? '')
  const response = await whileHeld(database.url, pool, {
    // The other transaction waits long before looking for a deadlock: the request finds it.
    hold: async holder => {
      await holder.query('SET LOCAL deadlock_timeout = \'60s\'')
      await holder.query('SELECT 1 FROM "Session" WHERE id = $1 FOR UPDATE', [held])
    },
    waitingStatement: '%UPDATE "Session" SET "revokedAt"%',
    // The request holds the user's row and waits for the session's; this waits for the user's.
    meanwhile: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1 FOR NO KEY UPDATE', [account.user.id])
  }, async () => await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { authorization: `Bearer ${sessions[0]?.accessToken}` } }))
  t.equal(response.statusCode, 503)
  t.match(response.json(), { code: 'SERVICE_UNAVAILABLE' })
  t.equal(response.headers['retry-after'], '1')
  for (const s of sessions) t.notOk(await isRevoked(sessionIdOf(s.refreshToken)), 'rolled back whole')
})

// Regression: a logout by a token of a key retired since (more than a day after a rotation)
// answered 204 and ended nothing.
t.test('a logout by a token of a key retired since ends its session, while the key is in JWT_KEYS_DIR', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'auth-logout-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const start = Date.now()
  await generateKeyFiles(dir, 'EdDSA', new Date(start - 2 * 3600_000))
  await generateKeyFiles(dir, 'EdDSA', new Date(start + 86_400_000))
  const rotated = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: dir } })
  const account = await registerAccount(rotated.app)
  const old = await loginWithBody(rotated.app, account)
  // The new key signs from a day and an hour on; the old one verifies a day more.
  rotated.clock.advance(2 * 86_400 + 2 * 3600)
  t.equal((await rotated.app.inject({ method: 'GET', url: '/auth/session', headers: { authorization: `Bearer ${old.accessToken}` } })).json().code, 'AUTH_TOKEN_EXPIRED', 'the retired key verifies nothing else')
  t.equal((await rotated.app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${old.accessToken}` } })).statusCode, 204)
  t.not((await rotated.prisma.session.findUniqueOrThrow({ where: { id: old.sessionId } })).revokedAt, null, 'its session ended')
  t.equal((await rotated.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: old.refreshToken } })).json().code, 'AUTH_REFRESH_REVOKED')
})
