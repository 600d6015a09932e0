// GET/PATCH/PUT /users/me with a Bearer token or the access cookie, and the audit entries of a change.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, loginWithCookies, newAccount, registerAccount } from '../helpers/users.js'

const { app, prisma, pool, config } = await buildTestApp(t)

t.test('GET /users/me with a Bearer token', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const response = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const me = response.json()
  t.same(Object.keys(me).sort(), ['createdAt', 'email', 'emailVerified', 'id', 'mfa', 'pendingEmail', 'profile', 'role', 'updatedAt', 'username'])
  t.match(me, { id: account.user.id, email: account.email, username: account.username, role: 'user', emailVerified: false, profile: { displayName: null, bio: null, avatarUrl: null } })
  t.same(me.mfa, { totp: false, recoveryCodesLeft: 0 })
})

t.test('GET /users/me with the access cookie', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const response = await app.inject({ method: 'GET', url: '/users/me', headers: { cookie } })
  t.equal(response.statusCode, 200)
  t.equal(response.json().id, account.user.id)
})

t.test('the Authorization header wins over the cookie, with no fallback', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const response = await app.inject({ method: 'GET', url: '/users/me', headers: { cookie, authorization: 'Bearer not.a.token' } })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_TOKEN_INVALID')
})

t.test('401s: none, malformed, tampered, other scheme, revoked session', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const none = await app.inject({ method: 'GET', url: '/users/me' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().code, 'AUTH_REQUIRED')
  t.equal(none.headers['www-authenticate'], 'Bearer')

  const [header, payload, signature] = accessToken.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${signature}`
  for (const authorization of ['Bearer garbage', `Bearer ${forged}`, `Bearer ${accessToken} extra`]) {
    const response = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization } })
    t.equal(response.statusCode, 401, authorization.slice(0, 20))
    t.equal(response.json().code, 'AUTH_TOKEN_INVALID')
    t.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"')
  }
  // Not the service's scheme: a browser's behind HTTP authentication, read as no header.
  const basic = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })
  t.equal(basic.statusCode, 401)
  t.equal(basic.json().code, 'AUTH_REQUIRED')
  const inUrl = await app.inject({ method: 'GET', url: `/users/me?access_token=${accessToken}` })
  t.equal(inUrl.statusCode, 401, 'a token in the URL is never accepted')

  await prisma.session.update({ where: { id: claims.sid }, data: { revokedAt: new Date() } })
  const revoked = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(revoked.statusCode, 401)
  t.equal(revoked.json().code, 'AUTH_SESSION_REVOKED', 'routes that read the database check the session')
  t.equal(revoked.headers['www-authenticate'], 'Bearer error="invalid_token"')
})

t.test('the scheme is matched in any case and followed by one or more spaces, as RFC 6750 writes it (regression: two spaces were refused)', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  for (const authorization of [`Bearer ${accessToken}`, `bearer ${accessToken}`, `BEARER   ${accessToken}`, `Bearer  ${accessToken}`]) {
    const response = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization } })
    t.equal(response.statusCode, 200, JSON.stringify(authorization.slice(0, 10)))
  }
  for (const authorization of [`Bearer\t${accessToken}`, `Bearer${accessToken}`, `Bearer ${accessToken}=`]) {
    const response = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization } })
    t.equal(response.json().code, 'AUTH_TOKEN_INVALID', JSON.stringify(authorization.slice(0, 10)))
  }
})

t.test('an expired access token is refused', async t => {
  const { app: shortLived, clock } = await buildTestApp(t, { env: { ACCESS_TOKEN_TTL_SECONDS: '5' } })
  const account = await registerAccount(shortLived)
  const { accessToken: fresh } = await loginWithBody(shortLived, account)
  const ok = await shortLived.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${fresh}` } })
  t.equal(ok.statusCode, 200)
  clock.advance(-6)
  const { accessToken: stale, sessionId } = await loginWithBody(shortLived, account)
  clock.advance(6)
  const expired = await shortLived.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${stale}` } })
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'AUTH_TOKEN_EXPIRED')
  t.equal(expired.json().sessionId, sessionId, 'names the expired token\'s session, which a client of HttpOnly cookies cannot read')
  t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token"')
})

// A client sends a call again after a refresh naming the session whose token expired: cookies
// replaced meanwhile by another app's sign-in must not run it as the new session.
t.test('a request naming another session than its token\'s (X-Auth-Session-Id) is refused before it runs: 401 AUTH_SESSION_MISMATCH', async t => {
  const account = await registerAccount(app)
  const { accessToken, sessionId } = await loginWithBody(app, account)
  const other = await loginWithBody(app, account)
  const patch = (headers: Record<string, string>) => app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}`, ...headers }, payload: { profile: { bio: 'meant for another session' } } })
  t.equal((await patch({ 'x-auth-session-id': sessionId })).statusCode, 200, 'its own session: as without the header')
  for (const meant of [other.sessionId, 'not a session id', '']) {
    const refused = await patch({ 'x-auth-session-id': meant })
    t.equal(refused.statusCode, 401, JSON.stringify(meant))
    t.equal(refused.json().code, 'AUTH_SESSION_MISMATCH')
  }
  await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: { profile: { bio: null } } })
  const refusedFirst = await patch({ 'x-auth-session-id': other.sessionId })
  t.equal(refusedFirst.statusCode, 401)
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(me.json().profile.bio, null, 'nothing written')
})

t.test('PATCH /users/me changes username and profile fields; PUT is an alias', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const authorization = `Bearer ${accessToken}`
  const patched = await app.inject({
    method: 'PATCH',
    url: '/users/me',
    headers: { authorization },
    payload: { username: 'Ada_Renamed_' + account.username.slice(-4), profile: { displayName: 'Ada', bio: 'Analyst', avatarUrl: 'https://example.com/a.png' } }
  })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { username: 'ada_renamed_' + account.username.slice(-4), profile: { displayName: 'Ada', bio: 'Analyst', avatarUrl: 'https://example.com/a.png' } })
  const put = await app.inject({ method: 'PUT', url: '/users/me', headers: { authorization }, payload: { profile: { bio: null } } })
  t.equal(put.statusCode, 200)
  t.match(put.json().profile, { displayName: 'Ada', bio: null }, 'partial: other fields kept, null clears')
  const me = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization } })
  t.same(me.json(), put.json())
})

t.test('PATCH /users/me audits a rename as user.updated and a staged address as email.change_requested; the profile alone, nothing', async t => {
  const account = await registerAccount(app)
  const other = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const patch = async (payload: object) => (await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload })).statusCode
  const entries = async () => await prisma.auditEvent.findMany({
    where: { subjectId: account.user.id, action: { in: ['user.updated', 'email.change_requested'] } },
    orderBy: { action: 'desc' },
    select: { action: true, actorId: true, subjectId: true, ip: true, details: true }
  })
  t.equal(await patch({ profile: { displayName: 'Ada', bio: 'Analyst', avatarUrl: 'https://example.com/a.png' } }), 200)
  t.equal(await patch({ username: account.username.toUpperCase(), email: account.email }), 200, 'one\'s own name and address sent again')
  t.equal(await patch({ username: other.username, profile: { bio: 'x' } }), 409, 'a taken name')
  t.same(await entries(), [], 'nothing security-relevant changed: nothing written')

  const renamed = `renamed_${account.username.slice(-6)}`
  const next = newAccount().email
  t.equal(await patch({ username: renamed, email: next, currentPassword: account.password, profile: { bio: 'new' } }), 200)
  const by = { actorId: account.user.id, subjectId: account.user.id, ip: '127.0.0.1' }
  t.same(await entries(), [
    { action: 'user.updated', ...by, details: { fields: ['username'], usernameWas: account.username } },
    { action: 'email.change_requested', ...by, details: { to: next } }
  ])
  t.equal(await patch({ email: account.email }), 200, 'the change cancelled')
  t.equal((await entries()).length, 2, 'a cancellation stages nothing')
})

t.test('a change waits for a connection of a busy pool as long as DATABASE_CONNECT_TIMEOUT_SECONDS allows', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  // Every connection taken for longer than Prisma's own default wait (2 s), well within the configured 5 s.
  t.equal(config.DATABASE_CONNECT_TIMEOUT_SECONDS, 5)
  const taken = await Promise.all(Array.from({ length: pool.options.max }, async () => await pool.connect()))
  const pending = app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: { profile: { bio: 'patient' } } })
  await sleep(2500)
  for (const client of taken) client.release()
  const response = await pending
  t.equal(response.statusCode, 200, response.body)
  t.equal(response.json().profile.bio, 'patient')
})

t.test("a change of the profile alone moves the user's updatedAt (regression: it stayed at the last change of the user's own columns)", async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const headers = { authorization: `Bearer ${accessToken}` }
  const before = (await app.inject({ method: 'GET', url: '/users/me', headers })).json()
  await sleep(5)
  const changed = await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { profile: { displayName: 'Ada' } } })
  t.equal(changed.statusCode, 200)
  t.ok(Date.parse(changed.json().updatedAt) > Date.parse(before.updatedAt), `${String(changed.json().updatedAt)} after ${String(before.updatedAt)}`)
  t.equal(changed.json().createdAt, before.createdAt)
  t.same((await app.inject({ method: 'GET', url: '/users/me', headers })).json().updatedAt, changed.json().updatedAt, 'as stored')
})

t.test('PATCH /users/me: a taken username is 409 and changes nothing', async t => {
  const first = await registerAccount(app)
  const second = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, second)
  const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: { username: first.username.toUpperCase(), profile: { bio: 'x' } } })
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'USERNAME_TAKEN')
  const row = await prisma.user.findUniqueOrThrow({ where: { id: second.user.id }, include: { profile: true } })
  t.equal(row.username, second.username)
  t.equal(row.profile?.bio, null, 'the profile change was not half-applied')
})

t.test('PATCH /users/me: a username kept for the operator is taken to a user, free to an admin', async t => {
  const user = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, user)
  const refused = await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: { username: 'Security', profile: { bio: 'x' } } })
  t.equal(refused.statusCode, 409)
  t.equal(refused.json().code, 'USERNAME_TAKEN')
  const row = await prisma.user.findUniqueOrThrow({ where: { id: user.user.id }, include: { profile: true } })
  t.same([row.username, row.profile?.bio], [user.username, null], 'nothing changed')

  const admin = await registerAccount(app)
  await prisma.user.update({ where: { id: admin.user.id }, data: { role: 'admin' } })
  const asAdmin = { authorization: `Bearer ${(await loginWithBody(app, admin)).accessToken}` }
  const renamed = await app.inject({ method: 'PATCH', url: '/users/me', headers: asAdmin, payload: { username: 'Security' } })
  t.equal(renamed.statusCode, 200)
  t.equal(renamed.json().username, 'security')
})

// Regression: any account could learn which usernames exist at the general per-client rate,
// sixty times what a registration's 409 USER_EXISTS allows.
t.test('PATCH /users/me: trying usernames counts as registering does, per client and per user', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_REGISTER: '3/60' } })
  const [taken, prober, other] = [await registerAccount(app), await registerAccount(app), await registerAccount(app)]
  const asProber = { authorization: `Bearer ${(await loginWithBody(app, prober)).accessToken}` }
  const tryName = (username: string, remoteAddress: string, headers = asProber) =>
    app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { username }, remoteAddress })
  t.same([(await tryName(taken.username, '10.2.0.1')).statusCode, (await tryName(`free_${Date.now()}`, '10.2.0.1')).statusCode, (await tryName(taken.username, '10.2.0.1')).statusCode], [409, 200, 409])
  const refused = await tryName(`again_${Date.now()}`, '10.2.0.1')
  t.equal(refused.statusCode, 429, 'the client has used its budget')
  t.equal(refused.json().code, 'RATE_LIMITED')
  t.ok(Number(refused.headers['retry-after']) > 0, 'says when to try again')
  t.equal((await tryName(taken.username, '10.2.0.2')).statusCode, 429, 'so has the account, from another address')
  const profileOnly = await app.inject({ method: 'PATCH', url: '/users/me', headers: asProber, payload: { profile: { bio: 'still editable' } }, remoteAddress: '10.2.0.1' })
  t.equal(profileOnly.statusCode, 200, 'the profile fields do not count')
  // Regression: a form that sends every field counted each save, and refused the eleventh.
  const own = (await app.inject({ method: 'GET', url: '/users/me', headers: asProber })).json().username as string
  const resent = await app.inject({ method: 'PUT', url: '/users/me', headers: asProber, payload: { username: own.toUpperCase(), profile: { bio: 'saved again' } }, remoteAddress: '10.2.0.1' })
  t.equal(resent.statusCode, 200, 'one\'s own name sent again does not count: it changes and tells nothing')
  const asOther = { authorization: `Bearer ${(await loginWithBody(app, other)).accessToken}` }
  t.equal((await tryName(`other_${Date.now()}`, '10.2.0.3', asOther)).statusCode, 200, 'another account from another address has its own budget')
  const otherName = (await app.inject({ method: 'GET', url: '/users/me', headers: asOther })).json().username as string
  const saves = []
  for (let save = 1; save <= 4; save++) {
    saves.push((await app.inject({ method: 'PUT', url: '/users/me', headers: asOther, payload: { username: otherName, profile: { bio: `save ${save}` } }, remoteAddress: '10.2.0.3' })).statusCode)
  }
  t.same(saves, [200, 200, 200, 200], 'saves with the name unchanged, past the budget')
})

// Regression: an email change's 409 EMAIL_TAKEN told which addresses have accounts at the mail
// routes' pace, a budget of its own on top of the registration's.
t.test('PATCH /users/me: trying email addresses counts in the registration\'s budget per client, with username changes', async t => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT_REGISTER: '3/60' } })
  const taken = await registerAccount(app)
  const prober = newAccount()
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: prober, remoteAddress: '10.2.1.1' })).statusCode, 201, 'a registration: one')
  const headers = { authorization: `Bearer ${(await loginWithBody(app, prober)).accessToken}` }
  const change = (payload: object) => app.inject({ method: 'PATCH', url: '/users/me', headers, payload, remoteAddress: '10.2.1.1' })
  t.equal((await change({ username: `renamed_${Date.now()}` })).statusCode, 200, 'a username change: two')
  t.equal((await change({ email: taken.email, currentPassword: prober.password })).json().code, 'EMAIL_TAKEN', 'an email change that tells: three')
  const refused = await change({ email: `free-${prober.email}`, currentPassword: prober.password })
  t.equal(refused.statusCode, 429, 'the client has used its budget')
  t.equal(refused.json().code, 'RATE_LIMITED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/register', payload: newAccount(), remoteAddress: '10.2.1.1' })).statusCode, 429, 'registering too')
})

t.test('PATCH /users/me: bad input', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const cases: Array<[string, unknown]> = [
    ['empty body', {}],
    ['invalid email', { email: 'not-an-email' }],
    ['mistyped email', { email: 42 }],
    ['role', { role: 'admin' }],
    ['unknown profile field', { profile: { website: 'x' } }],
    ['empty profile', { profile: {} }],
    ['10 kB bio', { profile: { bio: 'x'.repeat(10_000) } }],
    ['javascript: avatar', { profile: { avatarUrl: 'javascript:alert(1)' } }],
    ['http avatar', { profile: { avatarUrl: 'http://example.com/a.png' } }],
    ['mistyped displayName', { profile: { displayName: 5 } }],
    ['bad username', { username: 'has space' }]
  ]
  for (const [name, payload] of cases) {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` }, payload: payload as object })
    t.equal(response.statusCode, 400, name)
    t.equal(response.json().code, 'VALIDATION_FAILED', name)
  }
  const unchanged = await prisma.user.findUniqueOrThrow({ where: { id: account.user.id } })
  t.equal(unchanged.username, account.username)
  t.equal(unchanged.role, 'user')
})
