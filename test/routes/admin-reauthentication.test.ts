// The admin API's writes that change privilege or credentials need fresh authentication, as the caller's own do; sign-outs and reset mails do not.
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginAsAdmin } from '../helpers/admin.js'
import { enrolTotp, nextCode } from '../helpers/mfa.js'
import { loginWithBody, registerAccount, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const REAUTH_MAX_AGE_SECONDS = 600

type Method = 'PATCH' | 'DELETE' | 'POST' | 'PUT'
interface Write { method: Method, url: string, payload?: object }

/** The writes behind fresh authentication, on `id`. */
const freshWrites = (id: string): Write[] => [
  { method: 'PATCH', url: `/admin/users/${id}`, payload: { role: 'admin' } },
  { method: 'PATCH', url: `/admin/users/${id}`, payload: { isActive: false } },
  { method: 'PATCH', url: `/admin/users/${id}`, payload: { profile: { displayName: 'Mallory' } } },
  { method: 'DELETE', url: `/admin/users/${id}/mfa` },
  { method: 'DELETE', url: `/admin/users/${id}` },
  { method: 'PUT', url: '/admin/settings', payload: { accessTokenTtlSeconds: 86_400 } }
]

// Regression: an admin session older than REAUTH_MAX_AGE_SECONDS was refused a change of its own
// email, yet could promote any account, remove factors, delete users and stretch token lifetimes.
t.test('a stale admin session is refused every privilege or credential change, and nothing changes', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const target = await registerProvenAccount(app, prisma)
  await loginWithBody(app, target)
  clock.advance(REAUTH_MAX_AGE_SECONDS + 1)
  const auditBefore = await prisma.auditEvent.count({ where: { actorId: admin.user.id } })
  for (const write of freshWrites(target.user.id)) {
    const response = await app.inject({ ...write, headers: admin.headers })
    t.equal(response.statusCode, 403, `${write.method} ${write.url} ${JSON.stringify(write.payload ?? {})}`)
    t.match(response.json(), { statusCode: 403, code: 'REAUTHENTICATION_REQUIRED', methods: ['password'] })
  }
  t.match(await prisma.user.findUniqueOrThrow({ where: { id: target.user.id }, include: { profile: true } }), { role: 'user', isActive: true, profile: { displayName: null } }, 'the user is as they were')
  t.equal(await prisma.session.count({ where: { userId: target.user.id, revokedAt: null } }), 1, 'signed in still')
  t.equal((await app.inject({ method: 'GET', url: '/admin/settings', headers: admin.headers })).json().accessTokenTtlSeconds, 900, 'the lifetimes too')
  t.equal(await prisma.auditEvent.count({ where: { actorId: admin.user.id } }), auditBefore, 'nothing done in the admin\'s name')

  const reauthenticated = await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: admin.headers, payload: { password: admin.password } })
  t.equal(reauthenticated.statusCode, 200)
  const headers = { authorization: `Bearer ${reauthenticated.json().accessToken as string}` }
  const promoted = await app.inject({ method: 'PATCH', url: `/admin/users/${target.user.id}`, headers, payload: { role: 'admin' } })
  t.equal(promoted.statusCode, 200, 'the same change, once the admin proved it is them')
  t.equal(promoted.json().role, 'admin')
  const removed = await app.inject({ method: 'DELETE', url: `/admin/users/${target.user.id}`, headers })
  t.equal(removed.statusCode, 204)
})

// Regression: a refresh after the login or a reauthentication minted a fresh token, so a copy of
// an admin's refresh token could promote an account within the admin's ten minutes.
t.test('an admin\'s token minted by a refresh is refused every privilege or credential change, even at once', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const target = await registerProvenAccount(app, prisma)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: admin.refreshToken } })
  t.equal(refreshed.statusCode, 200)
  const headers = { authorization: `Bearer ${refreshed.json().accessToken as string}` }
  for (const write of freshWrites(target.user.id)) {
    const response = await app.inject({ ...write, headers })
    t.equal(response.json().code, 'REAUTHENTICATION_REQUIRED', `${write.method} ${write.url} ${JSON.stringify(write.payload ?? {})}`)
  }
  t.match(await prisma.user.findUniqueOrThrow({ where: { id: target.user.id } }), { role: 'user', isActive: true }, 'the user is as they were')
  t.equal((await app.inject({ method: 'PATCH', url: `/admin/users/${target.user.id}`, headers: admin.headers, payload: { role: 'admin' } })).statusCode, 200, 'the login\'s own token still promotes')
})

t.test('reading, signing a user out and sending a reset mail need no fresh authentication', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const target = await registerAccount(app)
  await loginWithBody(app, target)
  await loginWithBody(app, target)
  clock.advance(REAUTH_MAX_AGE_SECONDS + 1)
  const get = (url: string) => app.inject({ method: 'GET', url, headers: admin.headers })
  for (const url of ['/admin/users', `/admin/users/${target.user.id}`, `/admin/users/${target.user.id}/sessions`, '/admin/settings', '/admin/audit']) {
    t.equal((await get(url)).statusCode, 200, `GET ${url}`)
  }
  const [one] = (await get(`/admin/users/${target.user.id}/sessions`)).json().items as Array<{ id: string }>
  const endOne = await app.inject({ method: 'DELETE', url: `/admin/users/${target.user.id}/sessions/${one?.id ?? ''}`, headers: admin.headers })
  t.equal(endOne.statusCode, 204, 'one session ended')
  const endAll = await app.inject({ method: 'POST', url: `/admin/users/${target.user.id}/sessions/revoke`, headers: admin.headers })
  t.equal(endAll.statusCode, 204, 'every session ended')
  t.equal(await prisma.session.count({ where: { userId: target.user.id, revokedAt: null } }), 0)
  const reset = await app.inject({ method: 'POST', url: `/admin/users/${target.user.id}/password-reset`, headers: admin.headers })
  t.equal(reset.statusCode, 202, 'a reset mail sent')
})

t.test('an admin with a second factor is offered it, and a code makes the session fresh', async t => {
  const admin = await loginAsAdmin(app, prisma)
  const { secret } = await enrolTotp(app, admin.headers, clock, admin.password)
  const target = await registerAccount(app)
  clock.advance(REAUTH_MAX_AGE_SECONDS + 1)
  const stale = await app.inject({ method: 'PUT', url: '/admin/settings', headers: admin.headers, payload: { accessTokenTtlSeconds: 600 } })
  t.match(stale.json(), { code: 'REAUTHENTICATION_REQUIRED', methods: ['totp', 'recovery_code'] })
  const reauthenticated = await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: admin.headers, payload: { code: nextCode(secret, clock) } })
  t.equal(reauthenticated.statusCode, 200)
  const headers = { authorization: `Bearer ${reauthenticated.json().accessToken as string}` }
  const put = await app.inject({ method: 'PUT', url: '/admin/settings', headers, payload: { accessTokenTtlSeconds: 600 } })
  t.equal(put.statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: '/admin/settings', headers, payload: { accessTokenTtlSeconds: 900 } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${target.user.id}/mfa`, headers })).statusCode, 204)
})

t.test('a non-admin is refused FORBIDDEN before freshness is looked at', async t => {
  const user = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, user)
  clock.advance(REAUTH_MAX_AGE_SECONDS + 1)
  for (const write of freshWrites(user.user.id)) {
    const response = await app.inject({ ...write, headers: { authorization: `Bearer ${accessToken}` } })
    t.equal(response.json().code, 'FORBIDDEN', `${write.method} ${write.url}`)
  }
})

t.test('the OpenAPI document says which admin writes need fresh authentication', async t => {
  const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, { description?: string, responses: Record<string, unknown> }>> }
  const fresh = [['/admin/users/{id}', 'patch'], ['/admin/users/{id}', 'delete'], ['/admin/users/{id}/mfa', 'delete'], ['/admin/settings', 'put']]
  const notFresh = [['/admin/users/{id}/sessions/revoke', 'post'], ['/admin/users/{id}/sessions/{sessionId}', 'delete'], ['/admin/users/{id}/password-reset', 'post']]
  for (const [path = '', method = ''] of [...fresh, ...notFresh]) {
    const operation = spec.paths[path]?.[method]
    t.ok(operation?.responses['403'], `${method} ${path} lists 403`)
    const says = operation?.description?.includes('403 `REAUTHENTICATION_REQUIRED`') === true
    t.equal(says, fresh.some(([p, m]) => p === path && m === method), `${method} ${path}: ${says ? 'needs' : 'does not need'} fresh authentication`)
  }
})
