// /admin/settings (runtime token lifetimes, on every instance) and /admin/audit (the trail of events).
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { loginWithBody, loginWithCookies, registerAccount, registerProvenAccount } from '../helpers/users.js'

const env = { SETTINGS_REFRESH_SECONDS: '1' }
const { app, prisma, database } = await buildTestApp(t, { env })
const admin = await loginAsAdmin(app, prisma)
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString())

t.test('GET shows the environment defaults; PUT changes some, returns all, and tokens issued afterwards follow', async t => {
  const initial = await app.inject({ method: 'GET', url: '/admin/settings', headers: admin.headers })
  t.same(initial.json(), { accessTokenTtlSeconds: 900, refreshTokenIdleTtlSeconds: 604_800, sessionAbsoluteTtlSeconds: 2_592_000 })
  const put = await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload: { accessTokenTtlSeconds: 120, refreshTokenIdleTtlSeconds: 3600 } })
  t.equal(put.statusCode, 200)
  t.same(put.json(), { accessTokenTtlSeconds: 120, refreshTokenIdleTtlSeconds: 3600, sessionAbsoluteTtlSeconds: 2_592_000 })

  const user = await registerAccount(app)
  const tokens = await loginWithBody(app, user)
  t.equal(tokens.expiresIn, 120)
  const claims = claimsOf(tokens.accessToken)
  t.equal(claims.exp - claims.iat, 120)
  const { response } = await loginWithCookies(app, user)
  t.equal(response.cookies.find(c => c.name === '__Host-refresh_token')?.maxAge, 3600, 'the refresh cookie follows the idle lifetime')
  await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload: { accessTokenTtlSeconds: 900, refreshTokenIdleTtlSeconds: 604_800 } })
})

t.test('bounds and consistency are enforced; nothing is stored on bad input', async t => {
  for (const payload of [{}, { accessTokenTtlSeconds: 4 }, { accessTokenTtlSeconds: 86_401 }, { refreshTokenIdleTtlSeconds: 59 }, { sessionAbsoluteTtlSeconds: 31_536_001 }, { accessTokenTtlSeconds: '60' }, { other: 1 }, { sessionAbsoluteTtlSeconds: 600 }, { accessTokenTtlSeconds: 301, refreshTokenIdleTtlSeconds: 600 }, { refreshTokenIdleTtlSeconds: 1799 }]) {
    const response = await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload })
    t.equal(response.statusCode, 400, JSON.stringify(payload))
    t.equal(response.json().code, 'VALIDATION_FAILED')
  }
  const current = await app.inject({ method: 'GET', url: '/admin/settings', headers: admin.headers })
  t.equal(current.json().sessionAbsoluteTtlSeconds, 2_592_000, 'absolute below idle was refused')
  // Regression: an access token as long as the idle limit was taken, and sessions died under
  // clients in use, their tokens still valid.
  t.same(current.json(), { accessTokenTtlSeconds: 900, refreshTokenIdleTtlSeconds: 604_800, sessionAbsoluteTtlSeconds: 2_592_000 }, 'an idle limit below twice the access token\'s life was refused')
})

t.test('a change made through one instance applies on another sharing the database, without restart', {
  skip: database.poolSize === 1 && 'the embedded database serves one connection, so one instance: run with TEST_DATABASE_URL'
}, async t => {
  const other = await buildTestApp(t, { env, database })
  const before = await loginWithBody(other.app, await registerAccount(other.app))
  t.equal(before.expiresIn, 900)
  await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload: { accessTokenTtlSeconds: 300 } })
  const user = await registerAccount(other.app)
  let expiresIn = 0
  const deadline = Date.now() + 5_000
  while (expiresIn !== 300 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    expiresIn = (await loginWithBody(other.app, user)).expiresIn
  }
  t.equal(expiresIn, 300, 'the other instance issues with the new lifetime within SETTINGS_REFRESH_SECONDS')
  await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload: { accessTokenTtlSeconds: 900 } })
})

t.test('the audit entry of a change holds the stored values it replaced, not this instance\'s older copy', async t => {
  // Its own instance, which re-reads the settings too seldom to see the other's change in time.
  const { app: late, prisma: latePrisma } = await buildTestApp(t, { env: { SETTINGS_REFRESH_SECONDS: '300' } })
  const lateAdmin = await loginAsAdmin(late, latePrisma)
  const defaults = { accessTokenTtlSeconds: 900, refreshTokenIdleTtlSeconds: 604_800, sessionAbsoluteTtlSeconds: 2_592_000 }
  // What a change through another instance stores.
  const stored = { ...defaults, accessTokenTtlSeconds: 300 }
  await latePrisma.setting.create({ data: { key: 'tokenLifetimes', value: stored } })
  t.same((await late.inject({ method: 'GET', url: '/admin/settings', headers: lateAdmin.headers })).json(), defaults, 'this instance has not re-read them yet')
  const put = await late.inject({ method: 'PUT', url: '/admin/settings', headers: lateAdmin.headers, payload: { refreshTokenIdleTtlSeconds: 3600 } })
  const after = { ...stored, refreshTokenIdleTtlSeconds: 3600 }
  t.same(put.json(), after, 'the change merges into the stored values')
  const entry = await latePrisma.auditEvent.findFirstOrThrow({ where: { action: 'settings.changed' } })
  t.same(entry.details, { before: stored, after })
})

t.test('the audit trail records security events and admin actions, with no secrets', async t => {
  const user = await registerProvenAccount(app, prisma)
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'wrong password here' } })
  await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: 'whatever it is' } })
  const tokens = await loginWithBody(app, user)
  const first = (await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: tokens.refreshToken } })).json()
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: tokens.refreshToken } })
  await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { role: 'admin' } })
  await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { isActive: false } })
  await app.inject({ method: 'POST', url: `/admin/users/${user.user.id}/sessions/revoke`, headers: admin.headers })

  const response = await app.inject({ method: 'GET', url: `/admin/audit?subjectId=${user.user.id}&limit=100`, headers: admin.headers })
  t.equal(response.statusCode, 200)
  const actions = response.json().items.map((e: { action: string }) => e.action)
  for (const action of ['login.failed', 'login.succeeded', 'refresh.reuse_detected', 'user.role_changed', 'user.deactivated', 'sessions.revoked']) {
    t.ok(actions.includes(action), action)
  }
  const roleChange = response.json().items.find((e: { action: string }) => e.action === 'user.role_changed')
  t.match(roleChange, { actorId: admin.user.id, subjectId: user.user.id, details: { from: 'user', to: 'admin' } })
  const all = await app.inject({ method: 'GET', url: '/admin/audit?limit=100', headers: admin.headers })
  const unknown = all.json().items.find((e: { action: string, details: { identifier?: string } }) => e.action === 'login.failed' && e.details.identifier === 'nobody@example.com')
  t.ok(unknown, 'an attempt on an unknown account is recorded with the identifier tried')
  const text = JSON.stringify(all.json())
  for (const secret of [user.password, 'wrong password here', tokens.refreshToken, tokens.accessToken, first.refreshToken]) {
    t.notOk(text.includes(secret), 'no secret in the trail')
  }
  t.ok(all.json().items.some((e: { action: string }) => e.action === 'settings.changed'))
})

t.test('the audit trail pages newest first', async t => {
  const page1 = (await app.inject({ method: 'GET', url: '/admin/audit?limit=2', headers: admin.headers })).json()
  t.equal(page1.items.length, 2)
  const page2 = (await app.inject({ method: 'GET', url: `/admin/audit?limit=2&cursor=${page1.nextCursor}`, headers: admin.headers })).json()
  t.ok(page1.items[1].createdAt >= page2.items[0].createdAt)
  t.notOk(page2.items.some((e: { id: string }) => page1.items.some((f: { id: string }) => f.id === e.id)))
})

// Regression: entries carried ids only, and the console asked for each user, one call each.
t.test('each entry carries its users\' current addresses, none once a user is deleted', async t => {
  const user = await registerProvenAccount(app, prisma)
  const changed = await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { role: 'admin' } })
  t.equal(changed.statusCode, 200)
  const entryOf = async () => (await app.inject({ method: 'GET', url: `/admin/audit?subjectId=${user.user.id}&action=user.role_changed`, headers: admin.headers })).json().items[0]
  t.match(await entryOf(), { actorId: admin.user.id, actorEmail: admin.email, subjectId: user.user.id, subjectEmail: user.email })
  await prisma.user.delete({ where: { id: user.user.id } })
  t.match(await entryOf(), { actorEmail: admin.email, subjectId: user.user.id, subjectEmail: null }, 'the deleted user: an id, no address')
  const system = (await app.inject({ method: 'GET', url: '/admin/audit?action=login.failed', headers: admin.headers })).json().items
  t.ok(system.every((entry: { actorId: string | null, actorEmail: string | null }) => entry.actorId !== null || entry.actorEmail === null), 'no actor, no address')
})

t.test('a subjectId or a cursor the service did not write is 400 VALIDATION_FAILED', async t => {
  const id = admin.user.id
  const cursorOf = (at: string, cursorId: string) => Buffer.from(`${at}|${cursorId}`).toString('base64url')
  const time = '2025-01-01T00:00:00.000Z'
  for (const query of [
    `subjectId=urn:uuid:${id}`, `subjectId=${id.toUpperCase()}`,
    `cursor=${cursorOf(time, `urn:uuid:${id}`)}`, `cursor=${cursorOf(time, id.toUpperCase())}`, `cursor=${cursorOf(time, 'a'.repeat(36))}`,
    `cursor=${cursorOf(time, '-'.repeat(36))}`, `cursor=${cursorOf('-200000-01-01T00:00:00.000Z', id)}`, `cursor=${cursorOf('+275000-01-01T00:00:00.000Z', id)}`
  ]) {
    const response = await app.inject({ method: 'GET', url: `/admin/audit?${query}`, headers: admin.headers })
    t.equal(response.statusCode, 400, query)
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request' }, query)
  }
})
