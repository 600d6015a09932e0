// Token mode against the real service over HTTP: the account calls typed end to end, refresh before exp
// and on AUTH_TOKEN_EXPIRED with one rotation for concurrent calls, and the session's end.
import t from 'tap'
import { createTokenClient, isAuthError, type SessionEndEvent, type StoredTokens, type TokenClientOptions, type TokenStorage } from '../../packages/client/src/index.js'
import { totpCode } from '../../src/services/mfa/totp.js'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { SoftPasskey } from '../helpers/passkeys.js'
import { newAccount, proveAddress } from '../helpers/users.js'

const { app, prisma, clock } = await buildTestApp(t)
const { baseUrl } = await listen(app)

/** Secure storage is asynchronous (Keychain, Keystore): so is this one, to prove the client waits for it. It keeps the device token, as an app should. */
function slowStorage (): TokenStorage & { value: () => StoredTokens | null } {
  let tokens: StoredTokens | null = null
  let deviceToken: string | null = null
  const later = <T>(value: T) => new Promise<T>(resolve => setTimeout(() => { resolve(value) }, 2))
  return {
    value: () => tokens,
    get: () => later(tokens),
    set: async value => { tokens = await later(value) },
    clear: async () => { tokens = await later(null) },
    getDevice: () => later(deviceToken),
    setDevice: async value => { deviceToken = await later(value) }
  }
}

/** A client on its own storage and clock, with the requests it sends and the session ends it tells. */
function device (options: Partial<TokenClientOptions> = {}) {
  let offsetMs = 0
  const sent: string[] = []
  const ended: SessionEndEvent[] = []
  const storage = slowStorage()
  const client = createTokenClient({
    baseUrl,
    storage,
    now: () => Date.now() + offsetMs,
    fetch: (url, init) => {
      sent.push(`${init.method ?? 'GET'} ${new URL(url).pathname}`)
      const headers = new Headers(init.headers)
      headers.set('user-agent', 'ExampleApp/1.0')
      return fetch(url, { ...init, headers })
    },
    ...options
  })
  client.onSessionEnd(event => { ended.push(event) })
  return { client, storage, sent, ended, advance: (seconds: number) => { offsetMs += seconds * 1000 } }
}

/** One account, signed in on two devices. */
async function twoDevices () {
  const phone = device()
  const laptop = device()
  const account = newAccount()
  await phone.client.register(account)
  await phone.client.login({ email: account.email, password: account.password })
  await laptop.client.login({ email: account.email, password: account.password })
  return { phone, laptop, account }
}

const generationOf = async (refreshToken: string) =>
  (await prisma.session.findUniqueOrThrow({ where: { id: refreshToken.split('.')[0] as string } })).generation

t.test('the account calls, typed end to end, with the service\'s codes as errors', async t => {
  const { client, storage, ended } = device()
  const account = newAccount()
  const user = await client.register(account)
  t.equal(user.email, account.email)
  await t.rejects(client.register(account), { name: 'AuthError', code: 'USER_EXISTS', status: 409 })
  await t.rejects(client.login({ email: account.email, password: 'not the password' }), { code: 'AUTH_INVALID_CREDENTIALS', status: 401 })
  await t.rejects(client.me(), { code: 'AUTH_REQUIRED' }, 'not signed in')

  t.match(await client.login({ identifier: account.username, password: account.password }), { mfaRequired: false, user: { id: user.id }, expiresIn: 900 })
  t.match(storage.value(), { accessToken: /^eyJ/, refreshToken: /\./, expiresIn: 900 })
  t.equal((await client.me()).id, user.id)
  t.match(await client.updateMe({ profile: { displayName: 'Ada', bio: null } }), { profile: { displayName: 'Ada', bio: null } })
  await t.rejects(client.updateMe({ username: 'x' }), { code: 'VALIDATION_FAILED', status: 400 })
  const newEmail = `new-${account.email}`
  await t.rejects(client.updateMe({ email: newEmail }), { code: 'VALIDATION_FAILED', status: 400 }, 'a new address needs the current password')
  await t.rejects(client.updateMe({ email: newEmail, currentPassword: 'not the password' }), { code: 'INVALID_CURRENT_PASSWORD', status: 403 })
  t.match(await client.updateMe({ email: newEmail, currentPassword: account.password }), { email: account.email, pendingEmail: newEmail }, 'pending until confirmed')
  const sessions = await client.sessions({ limit: 5 })
  t.match(sessions, { items: [{ current: true, userAgent: 'ExampleApp/1.0' }], nextCursor: null })

  await t.rejects(client.changePassword({ currentPassword: 'wrong', newPassword: 'another horse battery staple' }), { code: 'INVALID_CURRENT_PASSWORD', status: 403 })
  await client.changePassword({ currentPassword: account.password, newPassword: 'another horse battery staple' })
  await client.resendVerificationEmail()
  await client.forgotPassword({ email: account.email })
  await t.rejects(client.resetPassword({ token: 'not-a-token', password: 'a third horse battery staple' }), { code: 'RESET_TOKEN_INVALID', status: 400 })
  await t.rejects(client.verifyEmail({ token: 'not-a-token' }), { code: 'VERIFICATION_TOKEN_INVALID' })

  const { refreshToken } = storage.value() as StoredTokens
  await client.logout()
  t.equal(storage.value(), null, 'the tokens are forgotten')
  t.same(ended, [{ reason: 'logout' }])
  const reused = await fetch(`${baseUrl}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken }) })
  t.equal((await reused.json()).code, 'AUTH_REFRESH_REVOKED', 'and the session ended at the service')
})

t.test('the device token the first sign-in is answered is kept, and sent with the next, across a logout: the service knows the device again', async t => {
  const sent: unknown[] = []
  const answered: unknown[] = []
  const { client, storage } = device({
    fetch: async (url, init) => {
      const response = await fetch(url, init)
      if (new URL(url).pathname === '/auth/login') {
        sent.push((JSON.parse(String(init.body)) as { deviceToken?: string }).deviceToken)
        answered.push((await response.clone().json() as { deviceToken?: string }).deviceToken)
      }
      return response
    }
  })
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  const first = answered[0]
  t.match(first, /^[A-Za-z0-9_-]{43}$/, 'the first sign-in is answered a device token')
  t.equal(await storage.getDevice?.(), first, 'which is kept')
  await client.logout()
  await client.login({ email: account.email, password: account.password })
  t.same(sent, [undefined, first], 'the second sign-in sends it')
  t.equal(answered[1], first, 'and the service answers the same one back')
  const lastSignIn = async () => (await client.activity({ limit: 1 })).items[0]
  t.match(await lastSignIn(), { action: 'login.succeeded', details: { newDevice: undefined } }, 'a sign-in from a known device')
  await device().client.login({ email: account.email, password: account.password })
  t.match(await lastSignIn(), { action: 'login.succeeded', details: { newDevice: true } }, 'where another device\'s is a new one')
})

t.test('shortly before exp: one refresh for every concurrent call, then the new token', async t => {
  const { client, storage, sent, advance } = device()
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  const first = storage.value() as StoredTokens
  advance(900 - 20)
  const users = await Promise.all(Array.from({ length: 8 }, () => client.me()))
  t.equal(new Set(users.map(u => u.id)).size, 1)
  t.equal(sent.filter(s => s === 'POST /auth/refresh').length, 1, 'one refresh')
  t.equal(await generationOf(first.refreshToken), 1, 'one rotation')
  t.not(await client.accessToken(), first.accessToken, 'a fresh token for the app\'s own servers')
  t.equal(sent.filter(s => s === 'GET /users/me').length, 8, 'no call sent twice')
})

t.test('a token the service finds expired (a clock behind): one refresh, one retry', async t => {
  const { client, storage, sent } = device()
  const account = newAccount()
  await client.register(account)
  // Issued as if 20 minutes ago: already expired for the service, not for this device's clock.
  clock.advance(-1200)
  await client.login({ email: account.email, password: account.password })
  clock.advance(1200)
  t.equal((await client.me()).email, account.email)
  t.same(sent.slice(-3), ['GET /users/me', 'POST /auth/refresh', 'GET /users/me'])
  t.equal(await generationOf((storage.value() as StoredTokens).refreshToken), 1)
})

t.test('a session revoked from another device ends here: tokens forgotten, no refresh tried', async t => {
  const { phone, laptop, account } = await twoDevices()
  const phoneSession = (await phone.client.sessions()).items.find(s => s.current)
  await laptop.client.revokeSession(phoneSession?.id as string)
  const error = await phone.client.me().catch((e: unknown) => e)
  t.ok(isAuthError(error, 'AUTH_SESSION_REVOKED'))
  t.same(phone.ended, [{ reason: 'refused', code: 'AUTH_SESSION_REVOKED' }])
  t.equal(phone.storage.value(), null)
  t.notOk(phone.sent.includes('POST /auth/refresh'))
  t.same(laptop.ended, [], 'the other device stays signed in')
  t.equal((await laptop.client.me()).email, account.email)
  const { items } = await laptop.client.activity({ limit: 1 })
  t.match(items, [{ action: 'session.revoked', by: 'self', details: { sessionId: phoneSession?.id } }], 'and its activity shows the revocation')
})

t.test('a refused refresh ends the session once and is not tried again', async t => {
  const { client, storage, sent, ended, advance } = device()
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  await prisma.session.updateMany({ where: { user: { email: account.email } }, data: { revokedAt: new Date() } })
  advance(900)
  await t.rejects(client.me(), { code: 'AUTH_REFRESH_REVOKED' })
  t.same(sent.slice(-1), ['POST /auth/refresh'], 'the call itself never left')
  t.same(ended, [{ reason: 'refused', code: 'AUTH_REFRESH_REVOKED' }])
  t.equal(storage.value(), null)
})

t.test('logout everywhere and account deletion end the session', async t => {
  const { phone, laptop, account } = await twoDevices()
  await laptop.client.logoutAll()
  t.same(laptop.ended, [{ reason: 'logout' }])
  await t.rejects(phone.client.me(), { code: 'AUTH_SESSION_REVOKED' }, 'the other device too')

  await phone.client.login({ email: account.email, password: account.password })
  await t.rejects(phone.client.deleteAccount({ password: 'wrong' }), { code: 'INVALID_CURRENT_PASSWORD' })
  await phone.client.deleteAccount({ password: account.password })
  t.same(phone.ended.at(-1), { reason: 'account-deleted' })
  await t.rejects(phone.client.login({ email: account.email, password: account.password }), { code: 'AUTH_INVALID_CREDENTIALS' })
})

t.test('a refresh answer lost on the way: sent again at once, it gets the same successor, and no later refresh is taken for theft', async t => {
  let lose = true
  const { client, storage, ended, advance } = device({
    fetch: async (url, init) => {
      const response = await fetch(url, init)
      if (lose && new URL(url).pathname === '/auth/refresh') {
        lose = false
        // The service rotated the token; its answer never arrives.
        throw new TypeError('network connection lost')
      }
      return response
    }
  })
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  advance(900 - 20)
  t.equal((await client.me()).email, account.email, 'the call succeeds')
  t.equal(lose, false, 'an answer was lost')
  const { refreshToken } = storage.value() as StoredTokens
  t.equal(await generationOf(refreshToken), 1, 'one rotation: the second try got the same successor')
  // Past the service's grace window, the token kept is the successor, not the retired one.
  clock.advance(11)
  t.teardown(() => { clock.advance(-11) })
  advance(900)
  t.equal((await client.me()).email, account.email)
  t.equal(await generationOf((storage.value() as StoredTokens).refreshToken), 2)
  t.same(ended, [], 'never logged out')
})

t.test('the connection lost for two seconds as a refresh is answered: tried again until it is back, the same successor, nobody logged out', async t => {
  let offlineUntil = 0
  const { client, storage, ended, advance } = device({
    fetch: async (url, init) => {
      if (new URL(url).pathname !== '/auth/refresh') return await fetch(url, init)
      if (Date.now() < offlineUntil) throw new TypeError('network is unreachable')
      const response = await fetch(url, init)
      if (offlineUntil !== 0) return response
      // The service rotated the token; the answer is lost, and the network with it.
      offlineUntil = Date.now() + 2000
      throw new TypeError('network connection lost')
    }
  })
  const account = newAccount()
  await client.register(account)
  await client.login({ email: account.email, password: account.password })
  advance(900 - 20)
  t.equal((await client.me()).email, account.email, 'the call succeeds once the network is back')
  t.ok(Date.now() >= offlineUntil, 'after the outage')
  t.equal(await generationOf((storage.value() as StoredTokens).refreshToken), 1, 'one rotation: the late try got the same successor')
  t.same(ended, [])
})

t.test('a gateway answers 502 or 504 after the service rotated: tried again, the same successor, nobody logged out (regression: the session ended at the next refresh)', async t => {
  for (const status of [502, 504]) {
    let gatewayErrors = 0
    let refreshes = 0
    const { client, storage, ended, advance } = device({
      fetch: async (url, init) => {
        const response = await fetch(url, init)
        if (new URL(url).pathname !== '/auth/refresh') return response
        refreshes++
        if (gatewayErrors === 1) return response
        gatewayErrors++
        // The service rotated the token; the gateway in front of it lost the answer.
        return new Response('<html>Bad Gateway</html>', { status, headers: { 'content-type': 'text/html' } })
      }
    })
    const account = newAccount()
    await client.register(account)
    await client.login({ email: account.email, password: account.password })
    advance(900 - 20)
    t.equal((await client.me()).email, account.email, `${status}: the call succeeds`)
    t.equal(refreshes, 2, `${status}: the refresh was sent again`)
    const { refreshToken } = storage.value() as StoredTokens
    t.equal(await generationOf(refreshToken), 1, `${status}: one rotation, the second try got the same successor`)
    clock.advance(11)
    t.teardown(() => { clock.advance(-11) })
    advance(900)
    t.equal((await client.me()).email, account.email, `${status}: past the grace window, the next refresh works`)
    t.same(ended, [], `${status}: never logged out`)
  }
})

t.test('a gateway answers 502 to every try: the refresh gives up within its budget with that answer, and nobody is logged out; the service\'s own 503 is not tried again', async t => {
  for (const status of [502, 503]) {
    let refreshes = 0
    const { client, ended, advance } = device({
      refreshTimeoutMs: 1000,
      fetch: async (url, init) => new URL(url).pathname === '/auth/refresh' && ++refreshes > 0
        ? new Response(JSON.stringify({ statusCode: status, code: 'SERVICE_UNAVAILABLE', error: 'Unavailable', message: 'down' }), { status, headers: { 'content-type': 'application/json', 'retry-after': '5' } })
        : await fetch(url, init)
    })
    const account = newAccount()
    await client.register(account)
    await client.login({ email: account.email, password: account.password })
    advance(900 - 20)
    const started = performance.now()
    await t.rejects(client.me(), { name: 'AuthError', status }, `${status}: the call fails`)
    t.ok(performance.now() - started < 1100, `${status}: within the budget`)
    if (status === 502) t.ok(refreshes >= 2 && refreshes <= 4, `502: tried again after pauses, and no try without time for it (${refreshes})`)
    else t.equal(refreshes, 1, '503: the service wrote nothing, and a service in trouble gets no more')
    t.same(ended, [], `${status}: nobody logged out`)
  }
})

/** Secure storage whose every operation waits its turn and takes 100 ms, as a slow keychain's do. */
function queuedStorage (): TokenStorage & { value: () => StoredTokens | null } {
  let tokens: StoredTokens | null = null
  let queue: Promise<unknown> = Promise.resolve()
  const inTurn = <T>(operation: () => T): Promise<T> => {
    const done = queue.then(async () => { await new Promise(resolve => setTimeout(resolve, 100)); return operation() })
    queue = done
    return done
  }
  return {
    value: () => tokens,
    get: () => inTurn(() => tokens),
    set: value => inTurn(() => { tokens = value }),
    clear: () => inTurn(() => { tokens = null })
  }
}

t.test('token mode on a slow storage: a sign-in while the previous user\'s refresh is answered keeps the new user (regression: the previous user\'s tokens replaced them)', async t => {
  for (const refresh of ['rotated', 'refused'] as const) {
    let releaseRefresh = () => {}
    const holdRefresh = new Promise<void>(resolve => { releaseRefresh = resolve })
    let armed = false
    const storage = queuedStorage()
    const { client, ended, advance } = device({
      storage,
      fetch: async (url, init) => {
        const path = new URL(url).pathname
        // The refresh's answer lands as the next sign-in is sent.
        if (path === '/auth/login' && armed) releaseRefresh()
        const response = await fetch(url, init)
        if (path === '/auth/refresh') await holdRefresh
        return response
      }
    })
    const [previous, next] = [newAccount(), newAccount()]
    await client.register(previous)
    await client.register(next)
    await client.login({ email: previous.email, password: previous.password })
    if (refresh === 'refused') await prisma.session.updateMany({ where: { user: { email: previous.email } }, data: { revokedAt: new Date(), revokedReason: 'test' } })
    advance(900 - 20)
    armed = true
    const stale = client.me().catch((error: unknown) => error)
    await new Promise(resolve => setTimeout(resolve, 400))
    await client.login({ email: next.email, password: next.password })
    await stale
    t.equal((await client.me()).email, next.email, `${refresh}: the calls after the sign-in are the new user's`)
    const kept = storage.value() as StoredTokens
    const session = await prisma.session.findUniqueOrThrow({ where: { id: kept.refreshToken.split('.')[0] as string }, include: { user: true } })
    t.equal(session.user.email, next.email, `${refresh}: the new user's tokens are kept`)
    // The refusal ended the previous session; told only if it came before the sign-in's answer.
    if (refresh === 'rotated') t.same(ended, [], 'no session end told')
    else t.ok(ended.length <= 1 && ended.every(event => event.reason === 'refused' && event.code === 'AUTH_REFRESH_REVOKED'), 'at most the previous session\'s end told')
  }
})

// Last: it moves the service's clock ten minutes on.
t.test('a second factor: enrolled through the client, then login answers a challenge that verifyMfa completes', async t => {
  const { client, storage } = device()
  const account = newAccount()
  const user = await client.register(account)
  await client.login({ email: account.email, password: account.password })
  await t.rejects(client.enrolTotp({ currentPassword: account.password }), { name: 'AuthError', code: 'EMAIL_NOT_VERIFIED', status: 403 }, 'only on a proven address')
  await proveAddress(prisma, user.id)
  await t.rejects(client.enrolTotp({ currentPassword: 'not the password' }), { name: 'AuthError', code: 'INVALID_CURRENT_PASSWORD', status: 403 }, 'only with the current password')
  const { secret, otpauthUri } = await client.enrolTotp({ currentPassword: account.password })
  t.match(otpauthUri, /^otpauth:\/\/totp\//)
  await t.rejects(client.confirmTotp({ code: totpCode(secret, new Date(clock.now().getTime() + 120_000)) }), { code: 'MFA_CODE_INVALID', status: 400 })
  const { recoveryCodes } = await client.confirmTotp({ code: totpCode(secret, clock.now()) })
  t.equal(recoveryCodes.length, 10)
  t.same((await client.me()).mfa, { totp: true, recoveryCodesLeft: 10 })
  await client.logout()

  const challenge = await client.login({ email: account.email, password: account.password })
  t.match(challenge, { mfaRequired: true, mfaToken: String, methods: ['totp', 'recovery_code'], expiresIn: 300 })
  t.equal(storage.value(), null, 'no token before the second factor')
  if (!challenge.mfaRequired) return
  await t.rejects(client.verifyMfa({ mfaToken: challenge.mfaToken, code: '000000' }), { code: 'MFA_CODE_INVALID', status: 401 })
  clock.advance(30)
  const signed = await client.verifyMfa({ mfaToken: challenge.mfaToken, code: totpCode(secret, clock.now()) })
  t.match(signed, { mfaRequired: false, user: { email: account.email }, expiresIn: 900 })
  t.match(storage.value(), { accessToken: /^eyJ/, refreshToken: /\./ })
  t.equal((await client.me()).email, account.email, 'signed in')
  await t.rejects(client.verifyMfa({ mfaToken: challenge.mfaToken, code: totpCode(secret, clock.now()) }), { code: 'MFA_CHALLENGE_EXPIRED' }, 'single use')

  clock.advance(601)
  await t.rejects(client.regenerateRecoveryCodes({ currentPassword: account.password }), { code: 'REAUTHENTICATION_REQUIRED', status: 403, methods: ['totp', 'recovery_code'] }, 'with the methods the account can use')
  t.ok(storage.value() !== null, 'a 403 does not end the session')
  await client.reauthenticate({ recoveryCode: recoveryCodes[0] as string })
  await t.rejects(client.regenerateRecoveryCodes({ currentPassword: 'not the password' }), { name: 'AuthError', code: 'INVALID_CURRENT_PASSWORD', status: 403 }, 'only with the current password')
  t.equal((await client.regenerateRecoveryCodes({ currentPassword: account.password })).recoveryCodes.length, 10)
  await client.removeTotp()
  t.same((await client.me()).mfa, { totp: false, recoveryCodesLeft: 0 })
})

t.test('passkeys: registered through the client, then a passwordless sign-in and a second step with one', async t => {
  const { client, storage } = device()
  const account = newAccount()
  await proveAddress(prisma, (await client.register(account)).id)
  await client.login({ email: account.email, password: account.password })
  const passkey = new SoftPasskey()
  const registered = await client.registerPasskey({ response: passkey.register(await client.passkeyRegistrationOptions({ currentPassword: account.password })), name: 'Phone' })
  t.match(await client.passkeys(), [{ id: registered.id, name: 'Phone' }])
  await client.logout()

  await t.rejects(client.loginWithPasskey({ response: passkey.assert(await client.passkeyLoginOptions(), { wrongKey: true }) }), { code: 'PASSKEY_INVALID', status: 401 })
  t.equal(storage.value(), null, 'nothing kept from a refused assertion')
  const signed = await client.loginWithPasskey({ response: passkey.assert(await client.passkeyLoginOptions()) })
  t.match(signed, { mfaRequired: false, user: { email: account.email }, expiresIn: 900 })
  t.match(storage.value(), { accessToken: /^eyJ/, refreshToken: /\./ })
  t.equal((await client.me()).email, account.email, 'signed in, with no second step')
  await client.logout()

  const challenge = await client.login({ email: account.email, password: account.password })
  if (!challenge.mfaRequired) throw new Error('the passkey is a second factor: a challenge was expected')
  t.ok(challenge.methods.includes('webauthn'), `methods: ${challenge.methods.join(', ')}`)
  const options = await client.mfaPasskeyOptions({ mfaToken: challenge.mfaToken })
  t.match(options, { challenge: String, allowCredentials: [{ id: passkey.id }] })
  await t.rejects(client.mfaPasskeyOptions({ mfaToken: 'not a challenge' }), { code: 'MFA_CHALLENGE_EXPIRED', status: 401 })
  t.match(await client.verifyMfa({ mfaToken: challenge.mfaToken, webauthn: passkey.assert(options) }), { mfaRequired: false, user: { email: account.email } })
  t.equal((await client.me()).email, account.email, 'signed in after the second step')
})
