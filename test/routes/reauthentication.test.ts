// Fresh authentication: sensitive changes on a session past REAUTH_MAX_AGE_SECONDS answer 403 with the methods; POST /auth/reauthenticate renews it.
import t from 'tap'
import { loginAsAdmin } from '../helpers/admin.js'
import { buildTestApp } from '../helpers/app.js'
import { racedWhileHeld, whileHeld } from '../helpers/locks.js'
import { enrolTotp, nextCode, startLogin } from '../helpers/mfa.js'
import { registerPasskey } from '../helpers/passkeys.js'
import { loginWithBody, loginWithCookies, registerAccount, registerProvenAccount } from '../helpers/users.js'

const { app, prisma, pool, database, clock, config } = await buildTestApp(t)
const onServer = database.poolSize > 1
const STALE = config.REAUTH_MAX_AGE_SECONDS + 1

const bearer = (accessToken: string) => ({ authorization: `Bearer ${accessToken}` })
const reauthenticate = (headers: Record<string, string>, payload: unknown) =>
  app.inject({ method: 'POST', url: '/auth/reauthenticate', headers, payload: payload as object })

/** Every route that needs fresh authentication, with a body that would otherwise succeed. */
const sensitive = (password: string): Array<[string, string, unknown]> => [
  ['POST', '/auth/password/change', { currentPassword: password, newPassword: 'a new and better passphrase' }],
  ['PATCH', '/users/me', { email: `changed-${Date.now()}@example.com`, currentPassword: password }],
  ['POST', '/auth/mfa/totp', { currentPassword: password }],
  ['DELETE', '/auth/mfa/totp', undefined],
  ['POST', '/auth/mfa/recovery-codes', { currentPassword: password }],
  ['POST', '/auth/logout-all', undefined],
  ['DELETE', '/users/me', { password }]
]

t.test('a session past the limit is refused every sensitive change, with the methods it can use', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  clock.advance(STALE)
  for (const [method, url, payload] of sensitive(account.password)) {
    const response = await app.inject({ method: method as 'POST', url, headers: bearer(accessToken), ...(payload === undefined ? {} : { payload: payload as object }) })
    t.equal(response.statusCode, 403, `${method} ${url}`)
    t.same(response.json(), {
      statusCode: 403,
      code: 'REAUTHENTICATION_REQUIRED',
      error: 'Forbidden',
      message: 'Confirm it is you first: POST /auth/reauthenticate with one of the methods listed',
      methods: ['password']
    }, `${method} ${url}`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) })).statusCode, 200, 'the account still exists')
  const profile = await app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(accessToken), payload: { profile: { displayName: 'Ada' } } })
  t.equal(profile.statusCode, 200, 'a profile change is not sensitive')
  t.equal(await prisma.session.count({ where: { userId: account.user.id, revokedAt: null } }), 1, 'logout-all did nothing')
})

// Regression: a proof stamped ahead of the clock (set back since) stayed fresh for the step's length.
t.test('a proof stamped ahead of the clock is no fresher than one as far behind', async t => {
  const account = await registerAccount(app)
  clock.advance(STALE)
  const { accessToken } = await loginWithBody(app, account)
  clock.advance(-STALE)
  const refused = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(accessToken) })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().code, 'REAUTHENTICATION_REQUIRED')
  clock.advance(STALE - 5)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(accessToken) })).statusCode, 204, 'a few seconds ahead: fresh')
})

t.test('reauthenticating with the password answers a new access token, the fresh one; the session and its refresh token stay', async t => {
  const account = await registerAccount(app)
  const { accessToken, refreshToken, sessionId } = await loginWithBody(app, account)
  const other = await loginWithBody(app, account)
  clock.advance(STALE)
  const wrong = await reauthenticate(bearer(accessToken), { password: 'not the password' })
  t.equal(wrong.statusCode, 403)
  t.equal(wrong.json().code, 'INVALID_CURRENT_PASSWORD')
  const renewed = await reauthenticate(bearer(accessToken), { password: account.password })
  t.equal(renewed.statusCode, 200)
  t.match(renewed.json(), { accessToken: String, tokenType: 'Bearer', expiresIn: config.ACCESS_TOKEN_TTL_SECONDS })
  t.same(renewed.cookies, [])
  const fresh = bearer(renewed.json().accessToken)
  t.equal((await app.inject({ method: 'GET', url: '/auth/session', headers: fresh })).json().sid, sessionId, 'of the same session')
  const newPassword = 'a new and better passphrase'
  const change = await app.inject({ method: 'POST', url: '/auth/password/change', headers: fresh, payload: { currentPassword: account.password, newPassword } })
  t.equal(change.statusCode, 204, 'fresh again')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(other.accessToken) })).json().code, 'AUTH_SESSION_REVOKED', 'the other session ended with the change')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken } })
  t.equal(refreshed.statusCode, 200, 'the refresh token still works')
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'reauthentication.succeeded' } }), 1)
  t.equal(await prisma.auditEvent.count({ where: { subjectId: account.user.id, action: 'reauthentication.failed' } }), 1)
  const codes = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers: fresh, payload: { currentPassword: newPassword } })
  t.equal(codes.json().code, 'MFA_NOT_ENABLED', 'the fresh token stays fresh after a refresh')
  clock.advance(STALE)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: fresh })).statusCode, 403, 'and is stale later')
})

// Regression: every token a refresh minted after a reauthentication counted as fresh, so whoever
// held a copy of the refresh token (a backup of the app's storage, say) refreshed after the
// owner's reauthentication and changed the address with the token it got: the account taken.
t.test('a refresh mints no fresh token, whoever sends it: only the token an authentication answers is fresh', async t => {
  const account = await registerProvenAccount(app, prisma)
  const owner = await loginWithBody(app, account)
  const takeover = async (accessToken: string) => await app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(accessToken), payload: { email: `taken-${Date.now()}@example.com`, currentPassword: account.password } })
  const afterLogin = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: owner.refreshToken } })
  t.equal(afterLogin.statusCode, 200)
  t.equal((await takeover(afterLogin.json().accessToken)).json().code, 'REAUTHENTICATION_REQUIRED', 'a refresh right after the login mints a stale token')
  clock.advance(STALE)
  const renewed = await reauthenticate(bearer(owner.accessToken), { password: account.password })
  t.equal(renewed.statusCode, 200, 'the owner reauthenticates')
  const stolen = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refreshToken: afterLogin.json().refreshToken } })
  t.equal(stolen.statusCode, 200, 'the copy of the refresh token refreshes')
  t.equal(stolen.json().sessionId, owner.sessionId)
  for (const [method, url, payload] of sensitive(account.password)) {
    const response = await app.inject({ method: method as 'POST', url, headers: bearer(stolen.json().accessToken), ...(payload === undefined ? {} : { payload: payload as object }) })
    t.equal(response.json().code, 'REAUTHENTICATION_REQUIRED', `${method} ${url} with what it minted`)
  }
  t.equal(await prisma.user.count({ where: { id: account.user.id, pendingEmail: null } }), 1, 'no address change is pending')
  t.equal((await takeover(renewed.json().accessToken)).statusCode, 200, 'the owner\'s own fresh token still is')
})

// Regression (ASVS 7.2.4): freshness was the session's, so the owner's reauthentication made
// every copy of the session's access token fresh, one taken by an intruder included.
t.test('a copy of the session\'s access token taken before a reauthentication stays stale', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  clock.advance(STALE)
  const copy = bearer(accessToken)
  t.equal((await reauthenticate(copy, { password: account.password })).statusCode, 200, 'the owner reauthenticates')
  for (const [method, url, payload] of sensitive(account.password)) {
    const response = await app.inject({ method: method as 'POST', url, headers: copy, ...(payload === undefined ? {} : { payload: payload as object }) })
    t.equal(response.json().code, 'REAUTHENTICATION_REQUIRED', `${method} ${url} with the copy`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: copy })).statusCode, 200, 'which still reads what any token of the session may')
})

// Regression: an older release's reauthentication, beside this one in a rolling
// upgrade, moves the session's authentication time and leaves the recorded token id, which named
// the login's token: a stale copy of it was fresh again.
t.test('a reauthentication that records no token (an older release\'s) leaves every token stale', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken, sessionId } = await loginWithBody(app, account)
  clock.advance(STALE)
  await prisma.session.update({ where: { id: sessionId }, data: { passwordProvenAt: clock.now(), authTime: clock.now() } })
  const response = await app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(accessToken), payload: { email: `taken-${Date.now()}@example.com`, currentPassword: account.password } })
  t.equal(response.json().code, 'REAUTHENTICATION_REQUIRED', 'the login\'s token, stale before, stays so')
})

t.test('with a factor: the code or a recovery code also renews, and the methods say so', async t => {
  const account = await registerProvenAccount(app, prisma)
  const { accessToken } = await loginWithBody(app, account)
  const headers = bearer(accessToken)
  const { secret, recoveryCodes } = await enrolTotp(app, headers, clock, account.password)
  clock.advance(STALE)
  const refused = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers, payload: { currentPassword: account.password } })
  t.same(refused.json().methods, ['totp', 'recovery_code'])
  const wrong = await reauthenticate(headers, { code: '000000' })
  t.equal(wrong.statusCode, 403, 'not 401: the session itself is fine')
  t.equal(wrong.json().code, 'MFA_CODE_INVALID')
  const byCode = await reauthenticate(headers, { code: nextCode(secret, clock) })
  t.equal(byCode.statusCode, 200)
  const regenerated = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers: bearer(byCode.json().accessToken), payload: { currentPassword: account.password } })
  t.equal(regenerated.statusCode, 200)
  clock.advance(STALE)
  t.equal((await reauthenticate(headers, { recoveryCode: recoveryCodes[0] })).json().code, 'MFA_CODE_INVALID', 'the regenerated set replaced that code')
  t.equal((await reauthenticate(headers, { recoveryCode: regenerated.json().recoveryCodes[0] })).statusCode, 200)
  const session = await prisma.session.findFirstOrThrow({ where: { userId: account.user.id }, select: { totpProvenAt: true, passwordProvenAt: true } })
  t.ok(session.totpProvenAt !== null && session.passwordProvenAt !== null, 'the session records when each was proven')
})

// Regression: the password alone made a session fresh beside a second factor,
// so whoever held a session and had learnt the password could change the address, remove the
// factor or take new recovery codes: the account taken, the factor notwithstanding.
t.test('beside a second factor, the password alone does not make a session fresh, nor does a login that proved no factor', async t => {
  const account = await registerProvenAccount(app, prisma)
  const enrolling = bearer((await loginWithBody(app, account)).accessToken)
  const stolen = bearer((await loginWithBody(app, account)).accessToken)
  const { secret } = await enrolTotp(app, enrolling, clock, account.password)
  const takeover = async (headers: Record<string, string>) => await app.inject({ method: 'PATCH', url: '/users/me', headers, payload: { email: `taken-${Date.now()}@example.com`, currentPassword: account.password } })
  t.same((await takeover(stolen)).json().methods, ['totp', 'recovery_code'], 'a session opened by the password before the factor, though within the limit')
  const byPassword = await reauthenticate(stolen, { password: account.password })
  t.equal(byPassword.statusCode, 403)
  t.match(byPassword.json(), { code: 'REAUTHENTICATION_REQUIRED', methods: ['totp', 'recovery_code'] }, 'the password is refused with the methods that do')
  t.equal((await takeover(stolen)).json().code, 'REAUTHENTICATION_REQUIRED', 'and changed nothing')
  t.equal(await prisma.user.count({ where: { id: account.user.id, pendingEmail: null } }), 1)
  t.equal((await takeover(enrolling)).statusCode, 200, 'the session that proved the factor by setting it up')
  const byCode = await reauthenticate(stolen, { code: nextCode(secret, clock) })
  t.equal((await takeover(bearer(byCode.json().accessToken))).statusCode, 200, 'a code does')
})

// Regression: a set-up of an app begun while the password was enough
// was confirmed after the owner's first passkey, and the session then held a factor of its own.
t.test('a passkey set up ends an app\'s set-up under way, begun when the password was enough', async t => {
  const account = await registerProvenAccount(app, prisma)
  const intruder = bearer((await loginWithBody(app, account)).accessToken)
  const owner = bearer((await loginWithBody(app, account)).accessToken)
  const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: intruder, payload: { currentPassword: account.password } })).json()
  await registerPasskey(app, owner, account.password, 'Laptop')
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: intruder, payload: { code: nextCode(secret, clock) } })
  t.equal(confirmed.json().code, 'MFA_ENROLMENT_NOT_STARTED', 'the set-up is gone')
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id } }), 0)
  t.same((await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: intruder, payload: { currentPassword: account.password } })).json().methods, ['webauthn'], 'and a new one needs the passkey')
})

// Regression: on two instances, the set-up's write could land after the owner's
// first passkey (its freshness checked before), out of the passkey's reach; confirmed, it was a
// factor of the intruder's own. The confirmation now asks, under the user's row, for a proof of
// the factor that is there.
t.test('an app confirmed beside a factor the session has not proven is refused, however its set-up got there', async t => {
  const account = await registerProvenAccount(app, prisma)
  const intruder = bearer((await loginWithBody(app, account)).accessToken)
  const owner = bearer((await loginWithBody(app, account)).accessToken)
  const { secret } = (await app.inject({ method: 'POST', url: '/auth/mfa/totp', headers: intruder, payload: { currentPassword: account.password } })).json()
  const setUp = await prisma.totpFactor.findUniqueOrThrow({ where: { userId: account.user.id } })
  await registerPasskey(app, owner, account.password, 'Laptop')
  // The set-up as a racing request on another instance writes it, after the passkey.
  await prisma.totpFactor.create({ data: setUp })
  const confirmed = await app.inject({ method: 'POST', url: '/auth/mfa/totp/confirm', headers: intruder, payload: { code: nextCode(secret, clock) } })
  t.equal(confirmed.statusCode, 403)
  t.match(confirmed.json(), { code: 'REAUTHENTICATION_REQUIRED', methods: ['webauthn'] })
  t.equal(await prisma.totpFactor.count({ where: { userId: account.user.id, confirmedAt: { not: null } } }), 0, 'no app')
})

// Regression: the routes' freshness is checked before their transaction; on two
// instances, the owner's first factor could commit in between, and a session that knew only the
// password regenerated the codes (then signed in with one), changed the password or removed the app.
t.test('a sensitive change whose account gained a factor while it waited is refused under the user\'s row', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const changes: Array<[string, string, (password: string) => object | undefined]> = [
    ['POST', '/auth/mfa/recovery-codes', password => ({ currentPassword: password })],
    ['DELETE', '/auth/mfa/totp', () => undefined],
    ['POST', '/auth/password/change', password => ({ currentPassword: password, newPassword: 'a new and better passphrase' })],
    ['PATCH', '/users/me', password => ({ email: `taken-${Date.now()}@example.com`, currentPassword: password })],
    ['DELETE', '/users/me', password => ({ password })]
  ]
  for (const [method, url, body] of changes) {
    const account = await registerProvenAccount(app, prisma)
    const intruder = bearer((await loginWithBody(app, account)).accessToken)
    const payload = body(account.password)
    const answer = await whileHeld(database.url, pool, {
      hold: async holder => await holder.query('SELECT 1 FROM "User" WHERE id = $1::uuid FOR UPDATE', [account.user.id]),
      waitingStatement: '%"User"%',
      // The owner's first factor, set up on another instance, commits while the change waits.
      meanwhile: async holder => await holder.query('INSERT INTO "TotpFactor" ("userId", "sealedSecret", "confirmedAt") VALUES ($1, \'\\x00\', now())', [account.user.id])
    }, async () => await app.inject({ method: method as 'POST', url, headers: intruder, ...(payload === undefined ? {} : { payload }) }))
    t.match(answer.json(), { code: 'REAUTHENTICATION_REQUIRED', methods: ['totp'] }, `${method} ${url}`)
  }
})

// Regression: freshness beside a factor counted any proof made since the latest
// authentication, so a proof of an app since removed counted once a reauthentication by password,
// stamped by a clock behind, came before it, and another factor was set up.
t.test('beside a factor, only a proof of a factor the user still has makes a session fresh, whatever the clocks say', async t => {
  const account = await registerProvenAccount(app, prisma)
  const enrolling = bearer((await loginWithBody(app, account)).accessToken)
  const { secret } = await enrolTotp(app, enrolling, clock, account.password)
  const challenge = (await startLogin(app, account)).json().mfaToken as string
  const session = bearer((await app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfaToken: challenge, code: nextCode(secret, clock) } })).json().accessToken)
  t.equal((await app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: enrolling })).statusCode, 204)
  clock.advance(-120)
  t.teardown(() => clock.advance(120))
  const byPassword = await reauthenticate(session, { password: account.password })
  t.equal(byPassword.statusCode, 200, 'with no factor left, the password is enough')
  const later = await loginWithBody(app, account)
  await registerPasskey(app, bearer(later.accessToken), account.password, 'Laptop')
  const stale = await app.inject({ method: 'POST', url: '/auth/mfa/recovery-codes', headers: bearer(byPassword.json().accessToken), payload: { currentPassword: account.password } })
  t.equal(stale.json().code, 'REAUTHENTICATION_REQUIRED', 'the proof of the removed app, stamped after it, does not count')
})

t.test('a code without a factor is 409 MFA_NOT_ENABLED', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const response = await reauthenticate(bearer(accessToken), { code: '123456' })
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'MFA_NOT_ENABLED')
})

t.test('wrong passwords at reauthentication reach the login backoff', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  for (let i = 0; i < config.LOGIN_BACKOFF_AFTER_FAILURES; i++) await reauthenticate(bearer(accessToken), { password: `wrong ${i}` })
  const limited = await reauthenticate(bearer(accessToken), { password: account.password })
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'RATE_LIMITED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: account.password } })).statusCode, 429, 'login waits too')
})

t.test('wrong passwords sent at once take their turns: a burst gets no more tries than the backoff allows', async t => {
  const account = await registerAccount(app)
  const { accessToken } = await loginWithBody(app, account)
  const tries = config.LOGIN_BACKOFF_AFTER_FAILURES
  const burst = await Promise.all(Array.from({ length: tries + 3 }, async (_, i) =>
    (await app.inject({ method: 'POST', url: '/auth/reauthenticate', headers: bearer(accessToken), payload: { password: `wrong ${i}` }, remoteAddress: `10.3.0.${i}` })).statusCode))
  t.same([...burst].sort((a, b) => a - b), [...Array<number>(tries).fill(403), 429, 429, 429])
})

t.test('a browser session reauthenticates with its cookies', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const headers = { cookie, 'sec-fetch-site': 'same-origin' }
  clock.advance(STALE)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers })).json().code, 'REAUTHENTICATION_REQUIRED')
  const renewed = await reauthenticate(headers, { password: account.password })
  t.equal(renewed.statusCode, 200)
  t.same(Object.keys(renewed.json()), ['expiresIn'], 'no token in the body')
  const [accessCookie] = renewed.cookies
  t.match(accessCookie, { name: '__Host-access_token', httpOnly: true, secure: true, path: '/' }, 'the new access token in its cookie, alone')
  t.equal(renewed.cookies.length, 1)
  t.equal((await reauthenticate({ cookie, origin: 'https://evil.example' }, { password: account.password })).json().code, 'CSRF_REJECTED')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers })).json().code, 'REAUTHENTICATION_REQUIRED', 'the cookie held before is not fresh')
  const renewedCookie = cookie.replace(/__Host-access_token=[^;]*/, `__Host-access_token=${accessCookie?.value ?? ''}`)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: { ...headers, cookie: renewedCookie } })).statusCode, 204, 'the new one is')
})

// Regression: a browser behind HTTP authentication sends Basic credentials beside its cookies,
// and every authenticated call was refused AUTH_TOKEN_INVALID, as if they were a bad token.
t.test('behind HTTP authentication, the cookies beside a Basic header authenticate, and a reauthentication answers in its cookie', async t => {
  const account = await registerAccount(app)
  const { cookie } = await loginWithCookies(app, account)
  const headers = { cookie, authorization: 'Basic dXNlcjpwYXNz', 'sec-fetch-site': 'same-origin' }
  const me = await app.inject({ method: 'GET', url: '/users/me', headers })
  t.equal(me.statusCode, 200, me.body)
  t.equal(me.json().email, account.email)
  const renewed = await reauthenticate(headers, { password: account.password })
  t.equal(renewed.statusCode, 200)
  t.same(Object.keys(renewed.json()), ['expiresIn'], 'no token in the body: the caller is a browser')
  t.equal(renewed.cookies[0]?.name, '__Host-access_token')
})

t.test('a revoked session cannot reauthenticate', async t => {
  const account = await registerAccount(app)
  const { accessToken, refreshToken } = await loginWithBody(app, account)
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refreshToken } })
  const response = await reauthenticate(bearer(accessToken), { password: account.password })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'AUTH_SESSION_REVOKED')
})

// Regression: the proof's transaction took the factor's row, then the session's; an admin's
// deletion of the user cascades to the session first, then the factor: PostgreSQL ended one
// of the two as a deadlock (503). The user's row first now, as every writer of a user's rows.
t.test('a reauthentication by code racing an admin\'s deletion of the user: no deadlock', { skip: !onServer && 'the embedded database serves one connection at a time: run with TEST_DATABASE_URL' }, async t => {
  const admin = await loginAsAdmin(app, prisma)
  const account = await registerProvenAccount(app, prisma)
  const headers = bearer((await loginWithBody(app, account)).accessToken)
  const { secret } = await enrolTotp(app, headers, clock, account.password)
  clock.advance(30)
  // The factor's row held a moment, so that both requests are under way when it is let go.
  const [proof, deleted] = await racedWhileHeld(database.url, pool, {
    hold: async holder => await holder.query('SELECT 1 FROM "TotpFactor" WHERE "userId" = $1::uuid FOR UPDATE', [account.user.id]),
    waitingStatement: '%"TotpFactor"%'
  },
  async () => await reauthenticate(headers, { code: nextCode(secret, clock) }),
  async () => await app.inject({ method: 'DELETE', url: `/admin/users/${account.user.id}`, headers: admin.headers }))
  t.not(proof.statusCode, 503, `the reauthentication: ${proof.statusCode}`)
  t.equal(deleted.statusCode, 204, 'the deletion')
})
