// What the admin console needs beyond the user routes: a user's sessions (list, end one), a reset mail sent by an admin, the audit trail filtered by action.
import t from 'tap'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { startMailServer } from '../helpers/mail.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'

const mail = await startMailServer(t)
const { app, prisma, clock } = await buildTestApp(t, { env: { SMTP_URL: mail.url } })
const admin = await loginAsAdmin(app, prisma)
const UNKNOWN = '00000000-0000-4000-8000-000000000000'

const asAdmin = (method: 'GET' | 'POST' | 'DELETE', url: string) => app.inject({ method, url, headers: admin.headers })
const auditOf = async (query: string) => (await asAdmin('GET', `/admin/audit?${query}`)).json().items as Array<{ action: string, actorId: string, subjectId: string, details: Record<string, unknown> }>

t.test('GET /admin/users/:id/sessions lists live sessions with device, ip and times, most recently used first', async t => {
  const user = await registerAccount(app)
  const first = await loginWithBody(app, user)
  await app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': 'Phone/1.0' }, payload: { email: user.email, password: user.password } })
  const ended = await loginWithBody(app, user)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: ended.refreshToken } })
  await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: first.refreshToken } })

  const response = await asAdmin('GET', `/admin/users/${user.user.id}/sessions`)
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const { items, nextCursor } = response.json()
  t.equal(items.length, 2, 'the ended session is not listed')
  t.equal(nextCursor, null)
  t.match(items[0], { userAgent: 'lightMyRequest', ip: '127.0.0.1', current: false }, 'the one refreshed last comes first')
  t.match(items[1], { userAgent: 'Phone/1.0', current: false })
  for (const item of items) t.ok(Date.parse(item.createdAt) <= Date.parse(item.lastUsedAt) && Date.parse(item.lastUsedAt) < Date.parse(item.expiresAt))

  const paged = (await asAdmin('GET', `/admin/users/${user.user.id}/sessions?limit=1`)).json()
  t.equal(paged.items.length, 1)
  t.equal((await asAdmin('GET', `/admin/users/${user.user.id}/sessions?limit=1&cursor=${paged.nextCursor}`)).json().items[0].id, items[1].id)

  const own = (await asAdmin('GET', `/admin/users/${admin.user.id}/sessions`)).json().items
  t.equal(own.filter((s: { current: boolean }) => s.current).length, 1, 'an admin sees which of their own sessions is this one')
  t.equal((await asAdmin('GET', `/admin/users/${UNKNOWN}/sessions`)).json().code, 'NOT_FOUND')
  t.equal((await asAdmin('GET', '/admin/users/not-a-uuid/sessions')).statusCode, 400)
})

t.test('an admin ending the last session shown between two pages hides no other live session', async t => {
  const user = await registerAccount(app)
  for (let i = 0; i < 4; i++) {
    await loginWithBody(app, user)
    clock.advance(1)
  }
  const url = `/admin/users/${user.user.id}/sessions`
  const first = (await asAdmin('GET', `${url}?limit=2`)).json()
  const ended = first.items[1].id
  t.equal((await asAdmin('DELETE', `${url}/${ended}`)).statusCode, 204)
  const second = (await asAdmin('GET', `${url}?limit=2&cursor=${first.nextCursor}`)).json()
  const live = (await asAdmin('GET', url)).json().items.map((s: { id: string }) => s.id)
  t.equal(live.length, 3)
  t.same([first.items[0], ...second.items].map((s: { id: string }) => s.id), live, 'every other live session once')
  t.equal(second.nextCursor, null)
})

t.test('an id or a cursor the service did not write is 400 VALIDATION_FAILED', async t => {
  const user = await registerAccount(app)
  await loginWithBody(app, user)
  const id = user.user.id
  const session = (await prisma.session.findFirstOrThrow({ where: { userId: id } })).id
  const cursorOf = (at: string, cursorId: string) => Buffer.from(`${at}|${cursorId}`).toString('base64url')
  const urls: Array<['GET' | 'POST' | 'DELETE', string]> = []
  for (const spelling of [`urn:uuid:${id}`, id.toUpperCase()]) {
    urls.push(['GET', `/admin/users/${spelling}/sessions`], ['POST', `/admin/users/${spelling}/password-reset`], ['DELETE', `/admin/users/${spelling}/sessions/${session}`])
  }
  for (const spelling of [`urn:uuid:${session}`, session.toUpperCase()]) {
    urls.push(['DELETE', `/admin/users/${id}/sessions/${spelling}`], ['GET', `/admin/users/${id}/sessions?cursor=${spelling}`])
  }
  for (const cursor of [cursorOf('2025-01-01T00:00:00.000Z', `urn:uuid:${session}`), cursorOf('2025-01-01T00:00:00.000Z', 'a'.repeat(36)), cursorOf('-200000-01-01T00:00:00.000Z', session)]) {
    urls.push(['GET', `/admin/users/${id}/sessions?cursor=${cursor}`])
  }
  for (const [method, url] of urls) {
    const response = await asAdmin(method, url)
    t.equal(response.statusCode, 400, `${method} ${url}`)
    t.match(response.json(), { statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request' }, `${method} ${url}`)
  }
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: session } })).revokedAt, null, 'the session lives on')
  t.equal(await prisma.auditEvent.count({ where: { action: 'password.reset_sent', subjectId: id } }), 0, 'no reset mail sent')
})

t.test('the per-user limit on reset mails cannot be passed by spelling the id in upper or mixed case', async t => {
  const { app: limited, prisma: limitedPrisma } = await buildTestApp(t, { env: { RATE_LIMIT_MAIL_ACCOUNT: '2/900' } })
  const limitedAdmin = await loginAsAdmin(limited, limitedPrisma)
  const user = await registerAccount(limited)
  const id = user.user.id
  const send = async (spelling: string) => await limited.inject({ method: 'POST', url: `/admin/users/${spelling}/password-reset`, headers: limitedAdmin.headers })
  t.same([(await send(id)).statusCode, (await send(id)).statusCode, (await send(id)).statusCode], [202, 202, 429])
  for (const spelling of [id.toUpperCase(), id.replace(/[a-f]/, letter => letter.toUpperCase()), id.replace(/[a-f](?=[^a-f]*$)/, letter => letter.toUpperCase())]) {
    const response = await send(spelling)
    t.equal(response.statusCode, 400, spelling)
    t.equal(response.json().code, 'VALIDATION_FAILED', spelling)
  }
  t.equal(await limitedPrisma.auditEvent.count({ where: { action: 'password.reset_sent', subjectId: id } }), 2, 'no mail past the limit')
})

t.test('DELETE /admin/users/:id/sessions/:sessionId ends that session only, and is audited', async t => {
  const user = await registerAccount(app)
  const kept = await loginWithBody(app, user)
  const ended = await loginWithBody(app, user)
  const other = await registerAccount(app)
  await loginWithBody(app, other)
  const sessions = (await asAdmin('GET', `/admin/users/${user.user.id}/sessions`)).json().items as Array<{ id: string }>
  const target = (await prisma.session.findFirstOrThrow({ where: { userId: user.user.id }, orderBy: { createdAt: 'desc' } })).id
  t.ok(sessions.some(s => s.id === target))
  const otherSession = (await prisma.session.findFirstOrThrow({ where: { userId: other.user.id } })).id

  t.equal((await asAdmin('DELETE', `/admin/users/${user.user.id}/sessions/${otherSession}`)).statusCode, 404, "another user's session is not this user's")
  t.equal((await asAdmin('DELETE', `/admin/users/${user.user.id}/sessions/${target}`)).statusCode, 204)
  t.equal((await asAdmin('DELETE', `/admin/users/${user.user.id}/sessions/${target}`)).json().code, 'NOT_FOUND', 'an ended session is 404')
  // Regression: an expired session, in no list, was ended all the same (204, audited).
  const expired = await loginWithBody(app, user)
  await prisma.session.update({ where: { id: expired.sessionId }, data: { idleExpiresAt: new Date(0) } })
  t.equal((await asAdmin('DELETE', `/admin/users/${user.user.id}/sessions/${expired.sessionId}`)).json().code, 'NOT_FOUND', 'an expired session is 404')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: expired.sessionId } })).revokedAt, null, 'and not written')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: ended.refreshToken } })).json().code, 'AUTH_REFRESH_REVOKED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: kept.refreshToken } })).statusCode, 200, 'the other session lives on')
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: otherSession } })).revokedAt, null)
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: target } })).revokedReason, 'revoked_by_admin')

  const [entry] = await auditOf(`subjectId=${user.user.id}&action=session.revoked`)
  t.match(entry, { actorId: admin.user.id, subjectId: user.user.id, details: { sessionId: target } })
})

t.test('an admin who ends their own session by cookie is signed out', async t => {
  const second = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'sec-fetch-site': 'same-origin' }, payload: { email: admin.email, password: admin.password } })
  const cookie = second.cookies.map(c => `${c.name}=${c.value}`).join('; ')
  const sid = (await app.inject({ method: 'GET', url: '/auth/session', headers: { cookie } })).json().sid
  const response = await app.inject({ method: 'DELETE', url: `/admin/users/${admin.user.id}/sessions/${sid}`, headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(response.statusCode, 204)
  t.ok(response.cookies.length >= 2 && response.cookies.every(c => c.value === '' && c.maxAge === 0), 'both cookies cleared')
})

// Regression: the sessions ended, the browser kept the cookies of one of them.
t.test('an admin who ends every session of their own by cookie is signed out', async t => {
  const self = await loginAsAdmin(app, prisma)
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'sec-fetch-site': 'same-origin' }, payload: { email: self.email, password: self.password } })
  const cookie = login.cookies.map(c => `${c.name}=${c.value}`).join('; ')
  const response = await app.inject({ method: 'POST', url: `/admin/users/${self.user.id}/sessions/revoke`, headers: { cookie, 'sec-fetch-site': 'same-origin' } })
  t.equal(response.statusCode, 204)
  t.ok(response.cookies.length >= 2 && response.cookies.every(c => c.value === '' && c.maxAge === 0), 'both cookies cleared')
  t.equal(await prisma.session.count({ where: { userId: self.user.id, revokedAt: null } }), 0, 'every session ended')
  const other = await app.inject({ method: 'POST', url: `/admin/users/${self.user.id}/sessions/revoke`, headers: admin.headers })
  t.equal(other.statusCode, 204)
  t.same(other.cookies, [], "another's sessions ended: the caller's cookies are left alone")
})

t.test('POST /admin/users/:id/password-reset mails a working link through the outbox; a deactivated user is 409 USER_INACTIVE', async t => {
  const user = await registerAccount(app)
  const response = await asAdmin('POST', `/admin/users/${user.user.id}/password-reset`)
  t.equal(response.statusCode, 202)
  t.same(response.json(), { message: 'A password reset link is on its way.' })
  const received = await mail.nextMail(user.email, { subject: /^Reset your password$/ })
  const reset = await app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: received.token, password: 'set after an admin reset 7' } })
  t.equal(reset.statusCode, 204, 'the mailed link resets the password')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'set after an admin reset 7' } })).statusCode, 200)
  const [entry] = await auditOf(`subjectId=${user.user.id}&action=password.reset_sent`)
  t.match(entry, { actorId: admin.user.id })

  await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { isActive: false } })
  const refused = await asAdmin('POST', `/admin/users/${user.user.id}/password-reset`)
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'USER_INACTIVE')
  t.equal(await prisma.outboxMail.count({ where: { recipient: user.email, kind: 'password_reset' } }), 0, 'nothing queued for a deactivated account')
  t.equal((await auditOf(`subjectId=${user.user.id}&action=password.reset_sent`)).length, 1, 'the refusal is not recorded as a sent mail')
  t.equal((await asAdmin('POST', `/admin/users/${UNKNOWN}/password-reset`)).statusCode, 404)
})

t.test('GET /admin/audit?action= returns only that action, newest first, with the user filter too', async t => {
  const user = await registerProvenAccount(app, prisma)
  for (const isActive of [false, true, false]) {
    await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { isActive } })
  }
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${user.user.id}`, headers: admin.headers, payload: { role: 'admin' } })).statusCode, 200, 'an entry of another action')
  const deactivations = await auditOf('action=user.deactivated&limit=100')
  t.ok(deactivations.length >= 2)
  t.ok(deactivations.every(e => e.action === 'user.deactivated'))
  const mine = await auditOf(`action=user.deactivated&subjectId=${user.user.id}`)
  t.equal(mine.length, 2, 'both filters at once')
  const page = (await asAdmin('GET', `/admin/audit?action=user.deactivated&subjectId=${user.user.id}&limit=1`)).json()
  const next = (await asAdmin('GET', `/admin/audit?action=user.deactivated&subjectId=${user.user.id}&limit=1&cursor=${page.nextCursor}`)).json()
  t.equal(next.items.length, 1)
  t.not(next.items[0].id, page.items[0].id, 'pages under the filter')
  t.equal(next.nextCursor, null)
  const unknown = await asAdmin('GET', '/admin/audit?action=user.exploded')
  t.equal(unknown.statusCode, 400, 'an action the trail never records is refused')
  t.equal(unknown.json().code, 'VALIDATION_FAILED')
})

t.test('the new routes are refused to users and to anonymous callers, and documented', async t => {
  const user = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, user)
  const session = (await prisma.session.findFirstOrThrow({ where: { userId: user.user.id } })).id
  const routes = [
    { method: 'GET' as const, url: `/admin/users/${user.user.id}/sessions` },
    { method: 'DELETE' as const, url: `/admin/users/${user.user.id}/sessions/${session}` },
    { method: 'POST' as const, url: `/admin/users/${user.user.id}/password-reset` }
  ]
  for (const route of routes) {
    t.equal((await app.inject(route)).statusCode, 401, `${route.method} ${route.url} anonymous`)
    const forbidden = await app.inject({ ...route, headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(forbidden.json().code, 'FORBIDDEN', `${route.method} ${route.url} as a user`)
  }
  t.equal((await prisma.session.findUniqueOrThrow({ where: { id: session } })).revokedAt, null)
  const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  t.ok(spec.paths['/admin/users/{id}/sessions'].get.operationId)
  t.ok(spec.paths['/admin/users/{id}/sessions/{sessionId}'].delete.operationId)
  t.ok(spec.paths['/admin/users/{id}/password-reset'].post.responses['409'])
  t.ok(spec.paths['/admin/audit'].get.parameters.some((p: { name: string, schema: { anyOf?: unknown[], enum?: unknown[] } }) => p.name === 'action' && (p.schema.anyOf ?? p.schema.enum) !== undefined))
})

t.test('the admin API reads the session and the role from the database: a revoked session, a deactivated or demoted admin loses it with a still-valid token', async t => {
  const cases = [
    { why: 'session revoked by logout', code: 'AUTH_SESSION_REVOKED', status: 401, end: async (other: Awaited<ReturnType<typeof loginAsAdmin>>) => { await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken: other.refreshToken } }) } },
    { why: 'admin deactivated', code: 'AUTH_SESSION_REVOKED', status: 401, end: async (other: Awaited<ReturnType<typeof loginAsAdmin>>) => { await prisma.user.update({ where: { id: other.user.id }, data: { isActive: false } }) } },
    { why: 'admin demoted', code: 'FORBIDDEN', status: 403, end: async (other: Awaited<ReturnType<typeof loginAsAdmin>>) => { await prisma.user.update({ where: { id: other.user.id }, data: { role: 'user' } }) } }
  ]
  for (const { why, code, status, end } of cases) {
    const other = await loginAsAdmin(app, prisma)
    t.equal((await app.inject({ method: 'GET', url: '/admin/users', headers: other.headers })).statusCode, 200, `${why}: served before`)
    await end(other)
    const after = await app.inject({ method: 'GET', url: '/admin/users', headers: other.headers })
    t.equal(after.statusCode, status, why)
    t.equal(after.json().code, code, why)
  }
})
