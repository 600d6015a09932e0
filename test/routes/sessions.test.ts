// GET /auth/session, POST /auth/verify, GET /auth/sessions, DELETE /auth/sessions/:id (and its audit entry).
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, loginWithCookies, registerAccount } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
/** A cursor as the service writes one (base64url of "time|id"), with whatever parts a test needs. */
const cursorOf = (time: string, id: string) => Buffer.from(`${time}|${id}`).toString('base64url')

t.test('GET /auth/session answers the verified claims', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const response = await app.inject({ method: 'GET', url: '/auth/session', headers: bearer(accessToken) })
  t.equal(response.statusCode, 200)
  const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] as string, 'base64url').toString())
  t.same(response.json(), claims)
  const { cookie } = await loginWithCookies(app, account)
  t.equal((await app.inject({ method: 'GET', url: '/auth/session', headers: { cookie } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/auth/session' })).statusCode, 401)
})

t.test('POST /auth/verify: valid, then refused once the session ends', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const valid = await app.inject({ method: 'POST', url: '/auth/verify', payload: { token: accessToken } })
  t.equal(valid.statusCode, 200)
  t.match(valid.json(), { valid: true, payload: { sub: account.user.id, role: 'user' } })
  const garbage = await app.inject({ method: 'POST', url: '/auth/verify', payload: { token: 'a.b.c' } })
  t.equal(garbage.statusCode, 401)
  t.equal(garbage.json().code, 'AUTH_TOKEN_INVALID')
  t.equal(garbage.headers['www-authenticate'], 'Bearer error="invalid_token"')
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(accessToken) })
  const revoked = await app.inject({ method: 'POST', url: '/auth/verify', payload: { token: accessToken } })
  t.equal(revoked.json().code, 'AUTH_SESSION_REVOKED')
  const bad = await app.inject({ method: 'POST', url: '/auth/verify', payload: { token: '' } })
  t.equal(bad.statusCode, 400)
})

t.test('GET /auth/sessions lists live sessions with the current one marked, page by page', async t => {
  const account = await registerAccount(app)
  await loginWithBody(app, account)
  await loginWithBody(app, account)
  const ended = await loginWithBody(app, account)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: ended.refreshToken } })
  const current = await loginWithBody(app, account)
  const response = await app.inject({ method: 'GET', url: '/auth/sessions', headers: { ...bearer(current.accessToken), 'user-agent': 'ignored' } })
  t.equal(response.statusCode, 200)
  const { items, nextCursor } = response.json()
  t.equal(items.length, 3, 'the ended session is not listed')
  t.equal(nextCursor, null)
  t.same(Object.keys(items[0]).sort(), ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])
  t.equal(items.filter((s: { current: boolean }) => s.current).length, 1)
  t.equal(items.find((s: { current: boolean }) => s.current).id, current.refreshToken.split('.')[0])

  const first = (await app.inject({ method: 'GET', url: '/auth/sessions?limit=2', headers: bearer(current.accessToken) })).json()
  t.equal(first.items.length, 2)
  t.type(first.nextCursor, 'string')
  const second = (await app.inject({ method: 'GET', url: `/auth/sessions?limit=2&cursor=${first.nextCursor}`, headers: bearer(current.accessToken) })).json()
  t.equal(second.items.length, 1)
  t.equal(second.nextCursor, null)
  const ids = [...first.items, ...second.items].map((s: { id: string }) => s.id)
  t.same([...ids].sort(), items.map((s: { id: string }) => s.id).sort(), 'pages cover the list exactly once')

  // ±Infinity and 1e400 coerce to numbers past every bound (regression: a 500).
  for (const query of ['limit=0', 'limit=101', 'limit=x', 'limit=Infinity', 'limit=-Infinity', 'limit=1e400', 'cursor=nope', 'other=1']) {
    const bad = await app.inject({ method: 'GET', url: `/auth/sessions?${query}`, headers: bearer(current.accessToken) })
    t.equal(bad.statusCode, 400, query)
    t.equal(bad.json().code, 'VALIDATION_FAILED', query)
  }
})

t.test('ending the last session shown between two pages hides no other live session', async t => {
  const account = await registerAccount(app)
  for (let i = 0; i < 4; i++) {
    await loginWithBody(app, account)
    clock.advance(1)
  }
  const current = await loginWithBody(app, account)
  const list = async (query: string) => {
    const response = await app.inject({ method: 'GET', url: `/auth/sessions?${query}`, headers: bearer(current.accessToken) })
    t.equal(response.statusCode, 200, query)
    return response.json() as { items: Array<{ id: string }>, nextCursor: string | null }
  }
  const idsOf = (items: Array<{ id: string }>) => items.map(item => item.id)
  /** The ids on the pages from `cursor` (from the first page when null) to the last. */
  const pagesFrom = async (limit: number, cursor: string | null) => {
    const ids: string[] = []
    do {
      const page = await list(`limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`)
      ids.push(...idsOf(page.items))
      cursor = page.nextCursor
    } while (cursor !== null)
    return ids
  }
  const first = await list('limit=2')
  const shown = idsOf(first.items)
  const ended = shown.pop() as string
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${ended}`, headers: bearer(current.accessToken) })).statusCode, 204)
  shown.push(...await pagesFrom(2, first.nextCursor))
  const live = idsOf((await list('limit=100')).items)
  t.equal(live.length, 4)
  t.same(shown, live, 'every other live session once, in order')

  // Sessions last used at the same moment follow one another by id, across pages too.
  await prisma.session.updateMany({ where: { userId: account.user.id }, data: { lastUsedAt: clock.now() } })
  t.same(await pagesFrom(1, null), [...live].sort(), 'by id, each once')
})

t.test('an id or a cursor the service did not write is 400 VALIDATION_FAILED, never a database error', async t => {
  const account = await registerAccount(app)
  const other = await loginWithBody(app, account)
  const current = await loginWithBody(app, account)
  const otherId = other.refreshToken.split('.')[0] as string
  const refused = async (method: 'GET' | 'DELETE', url: string) => {
    const response = await app.inject({ method, url, headers: bearer(current.accessToken) })
    t.equal(response.statusCode, 400, url)
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request' }, url)
  }
  // ajv's uuid format takes these; PostgreSQL refuses the first, and the second is a second spelling of the id.
  for (const spelling of [`urn:uuid:${otherId}`, otherId.toUpperCase()]) {
    await refused('DELETE', `/auth/sessions/${spelling}`)
    await refused('GET', `/auth/sessions?cursor=${spelling}`)
  }
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: otherId } })).revokedAt, null, 'the session lives on')
  const now = clock.now().toISOString()
  for (const cursor of [
    cursorOf(now, `urn:uuid:${otherId}`), cursorOf(now, otherId.toUpperCase()), cursorOf(now, 'a'.repeat(36)), cursorOf(now, '-'.repeat(36)),
    cursorOf('-200000-01-01T00:00:00.000Z', otherId), cursorOf('+275000-01-01T00:00:00.000Z', otherId), cursorOf('1969-12-31T23:59:59.999Z', otherId),
    // Regression: any text Date could read was a time.
    cursorOf('2026-12-05', otherId), cursorOf('2026-12-05T24:00:00.000Z', otherId), cursorOf('Feb 30 2026', otherId), cursorOf('Dec 5 2026 10:00 GMT+0300', otherId),
    `${cursorOf(now, otherId)}=`
  ]) await refused('GET', `/auth/sessions?cursor=${cursor}`)
})

t.test('DELETE /auth/sessions/:id revokes one of one’s own, audited as session.revoked; another user’s is 404, and writes nothing', async t => {
  const owner = await registerAccount(app)
  const intruder = await registerAccount(app)
  const target = await loginWithBody(app, owner)
  const ownerCurrent = await loginWithBody(app, owner)
  const intruderTokens = await loginWithBody(app, intruder)
  const targetId = target.refreshToken.split('.')[0] as string
  const entries = async () => await prisma.auditEvent.findMany({ where: { action: 'session.revoked', subjectId: { in: [owner.user.id, intruder.user.id] } }, select: { actorId: true, subjectId: true, ip: true, details: true } })

  const attempt = await app.inject({ method: 'DELETE', url: `/auth/sessions/${targetId}`, headers: bearer(intruderTokens.accessToken) })
  t.equal(attempt.statusCode, 404)
  t.equal(attempt.json().code, 'NOT_FOUND')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: targetId } })).revokedAt, null, 'untouched')
  t.same(await entries(), [], 'a session of another user: nothing ended, nothing written')

  const revoke = await app.inject({ method: 'DELETE', url: `/auth/sessions/${targetId}`, headers: bearer(ownerCurrent.accessToken) })
  t.equal(revoke.statusCode, 204)
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: targetId } })).revokedReason, 'revoked_by_user')
  t.same(await entries(), [{ actorId: owner.user.id, subjectId: owner.user.id, ip: '127.0.0.1', details: { sessionId: targetId } }])
  const again = await app.inject({ method: 'DELETE', url: `/auth/sessions/${targetId}`, headers: bearer(ownerCurrent.accessToken) })
  t.equal(again.statusCode, 404, 'already ended')
  const unknown = await app.inject({ method: 'DELETE', url: '/auth/sessions/00000000-0000-4000-8000-000000000000', headers: bearer(ownerCurrent.accessToken) })
  t.equal(unknown.statusCode, 404)
  t.equal((await entries()).length, 1, 'ending it again, or none, writes nothing more')
  const malformed = await app.inject({ method: 'DELETE', url: '/auth/sessions/not-a-uuid', headers: bearer(ownerCurrent.accessToken) })
  t.equal(malformed.statusCode, 400)
})

// Regression: an expired session, in no list, was ended all the same: 204, an audit entry, and a
// sign-out counted that voided the owner's logins under way.
t.test('DELETE /auth/sessions/:id of an expired session of one’s own is 404, and writes nothing', async t => {
  const owner = await registerAccount(app)
  const expired = await loginWithBody(app, owner)
  const current = await loginWithBody(app, owner)
  await prisma.session.update({ where: { id: expired.sessionId }, data: { idleExpiresAt: new Date(0) } })
  const before = await prisma.user.findUniqueOrThrow({ where: { id: owner.user.id }, select: { signOutGeneration: true } })
  const response = await app.inject({ method: 'DELETE', url: `/auth/sessions/${expired.sessionId}`, headers: bearer(current.accessToken) })
  t.equal(response.statusCode, 404)
  t.equal(response.json().code, 'NOT_FOUND')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: expired.sessionId } })).revokedAt, null, 'not written')
  t.equal(await prisma.auditEvent.count({ where: { action: 'session.revoked', subjectId: owner.user.id } }), 0, 'nor audited')
  t.same(await prisma.user.findUniqueOrThrow({ where: { id: owner.user.id }, select: { signOutGeneration: true } }), before, 'nor counted as a sign-out')
})

t.test('an ended session’s access token can neither list the sessions nor end one (401 AUTH_SESSION_REVOKED)', async t => {
  const account = await registerAccount(app)
  const thief = await loginWithBody(app, account)
  const owner = await loginWithBody(app, account)
  const ownerId = owner.refreshToken.split('.')[0] as string
  const revoked = await app.inject({ method: 'DELETE', url: `/auth/sessions/${thief.refreshToken.split('.')[0] as string}`, headers: bearer(owner.accessToken) })
  t.equal(revoked.statusCode, 204)

  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(thief.accessToken) })
  t.equal(list.statusCode, 401)
  t.equal(list.json().code, 'AUTH_SESSION_REVOKED')
  t.notMatch(list.body, ownerId, 'nothing of the owner’s sessions is shown')
  const end = await app.inject({ method: 'DELETE', url: `/auth/sessions/${ownerId}`, headers: bearer(thief.accessToken) })
  t.equal(end.statusCode, 401)
  t.equal(end.json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: ownerId } })).revokedAt, null, 'the owner’s session lives on')
})
