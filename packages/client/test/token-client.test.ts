// Token mode against a stand-in of the service, for what the service cannot answer yet (the second factor) or never should
// (a malformed device token), for answers that arrive too late (after a logout and a new login), and for storages that fail.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createTokenClient, memoryStorage, type Fetch, type SessionEndEvent, type StoredTokens, type TokenClient, type TokenClientOptions, type TokenStorage } from '../src/index.js'
import { createStandIn, errorAnswer, user, type StandIn } from './helpers/stand-in.js'

const baseUrl = 'https://auth.example.com/'
const tokens = { accessToken: 'access-1', refreshToken: 'refresh-1', tokenType: 'Bearer', expiresIn: 900 }

t.test('a second factor: no token kept until /auth/mfa/verify answers with them', async t => {
  const sent: Array<{ url: string, body: unknown }> = []
  const fetch: Fetch = async (url, init) => {
    const body = JSON.parse(String(init.body)) as Record<string, string>
    sent.push({ url, body })
    if (url.endsWith('/auth/login')) return Response.json({ mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp'], expiresIn: 300 })
    if (body.recoveryCode === 'abcd-efgh') return Response.json({ ...tokens, user })
    return errorAnswer(401, 'MFA_CODE_INVALID')
  }
  const storage = memoryStorage()
  const client = createTokenClient({ baseUrl, fetch, storage })
  const result = await client.login({ username: 'ada', password: 'pw' })
  t.match(result, { mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp'] })
  t.equal(storage.get(), null, 'nothing kept yet')
  await t.rejects(client.verifyMfa({ mfaToken: 'mfa-opaque', code: '000000' }), { code: 'MFA_CODE_INVALID' })
  t.same(await client.verifyMfa({ mfaToken: 'mfa-opaque', recoveryCode: 'abcd-efgh' }), { mfaRequired: false, user, expiresIn: 900 })
  t.match(storage.get(), { accessToken: 'access-1', refreshToken: 'refresh-1', expiresIn: 900 })
  const urls = ['https://auth.example.com/auth/login', 'https://auth.example.com/auth/mfa/verify', 'https://auth.example.com/auth/mfa/verify']
  t.same(sent.map(s => s.url), urls, 'the trailing slash of baseUrl dropped')
  t.same(sent[0]?.body, { username: 'ada', password: 'pw' }, 'no transport asked: tokens in the body')
})

t.test('an answer with cookies instead of tokens (a browser) is refused, and nothing is kept', async t => {
  const client = createTokenClient({ baseUrl, fetch: async () => Response.json({ user, expiresIn: 900 }) })
  await t.rejects(client.login({ email: user.email, password: 'pw' }), { code: 'UNEXPECTED_RESPONSE', message: /createAuthClient/ })
  await t.rejects(client.me(), { code: 'AUTH_REQUIRED', status: 401 }, 'not signed in')
})

/** A client on the stand-in, with its storage, its clock and the session ends it tells. */
function signedInClient (options: Partial<TokenClientOptions> = {}) {
  const service = createStandIn()
  const storage = memoryStorage()
  const clock = { ms: 0 }
  const ended: SessionEndEvent[] = []
  const client = createTokenClient({ baseUrl, fetch: service.fetch, storage, now: () => clock.ms, ...options })
  client.onSessionEnd(event => { ended.push(event) })
  /** The user signs out and in again while an earlier call is under way. */
  const switchSessions = async () => {
    await client.logout()
    await client.login({ identifier: 'grace', password: 'pw' })
    return storage.get()
  }
  return { service, storage, clock, ended, client, switchSessions }
}

t.test('a 401 to a call of the session before a logout and a new login ends nothing: the new session\'s tokens stay', async t => {
  const { service, storage, ended, client, switchSessions } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  // Answered after the logout: the service refuses the ended session's token.
  service.delays.set('GET /users/me', 200)
  const stale = client.me().catch((e: unknown) => e)
  await sleep(10)
  const fresh = await switchSessions()
  t.match(await stale, { code: 'SESSION_CHANGED', status: 401 }, 'the old session\'s refusal fails the call with a code of its own (it was the service\'s)')
  t.same(storage.get(), fresh, 'the new session\'s tokens are kept')
  t.same(await client.me(), user)
  t.same(ended, [{ reason: 'logout' }], 'no session end but the logout')
})

// Regression: the call was refreshed with the new session's tokens and sent again, and ran as
// whoever had signed in since.
t.test('a call whose AUTH_TOKEN_EXPIRED arrives after a logout and a new login fails: not sent again as the new session', async t => {
  const { service, storage, ended, client, switchSessions } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  service.expire()
  // Refused at once as expired; the answer takes its time to come back.
  service.answerDelays.set('PATCH /users/me', 200)
  const stale = client.updateMe({ profile: { displayName: 'the previous user' } }).catch((e: unknown) => e)
  await sleep(10)
  const fresh = await switchSessions()
  t.match(await stale, { code: 'SESSION_CHANGED', status: 401 }, 'the call fails, with a code of its own (it was a bare AUTH_TOKEN_EXPIRED)')
  t.equal(service.count('PATCH /users/me'), 1, 'sent once, never as the new session')
  t.equal(service.count('POST /auth/refresh'), 0, 'and the new session is not refreshed for it')
  t.same(storage.get(), fresh, 'the new session\'s tokens are kept')
  t.same(ended, [{ reason: 'logout' }], 'no session end but the logout')
})

t.test('a call or an access token asked for when due, whose refresh finds a new session kept, fails: never the new session\'s (regression: it was)', async t => {
  for (const ask of ['a call', 'accessToken()'] as const) {
    const service = createStandIn()
    let kept: StoredTokens | null = null
    let reads = 0
    let release = () => {}
    const replaced = new Promise<void>(resolve => { release = resolve })
    // The call reads the tokens, then its refresh reads them again: the second read waits until
    // the user has signed out and in again.
    const storage: TokenStorage = {
      get: async () => { if (++reads === 2) await replaced; return kept },
      set: async tokens => { kept = tokens },
      clear: async () => { kept = null }
    }
    const clock = { ms: 0 }
    const client = createTokenClient({ baseUrl, fetch: service.fetch, storage, now: () => clock.ms })
    await client.login({ identifier: 'ada', password: 'pw' })
    clock.ms = 880_000
    const asked = (ask === 'a call' ? client.updateMe({ profile: { displayName: 'the previous user' } }) : client.accessToken()).catch((e: unknown) => e)
    await sleep(10)
    const otherStorage = memoryStorage()
    await createTokenClient({ baseUrl, fetch: service.fetch, storage: otherStorage, now: () => clock.ms }).login({ identifier: 'grace', password: 'pw' })
    kept = await otherStorage.get()
    release()
    t.match(await asked, { code: 'SESSION_CHANGED', status: 401 }, `${ask} fails`)
    t.equal(service.count('PATCH /users/me'), 0, `${ask}: nothing sent as the new session`)
  }
})

t.test('a refresh under way across a logout and a new login neither stores its tokens nor ends the new session', async t => {
  for (const when of ['rotated before the logout', 'refused after it'] as const) {
    let late = false
    const { service, storage, clock, ended, client, switchSessions } = signedInClient({
      fetch: async (url, init) => {
        const response = await service.fetch(url, init)
        // The service rotated at once; the answer takes its time to come back.
        if (late && new URL(url).pathname === '/auth/refresh') await sleep(200)
        return response
      }
    })
    await client.login({ identifier: 'ada', password: 'pw' })
    clock.ms = 880_000
    if (when === 'rotated before the logout') late = true
    else service.delays.set('POST /auth/refresh', 200)
    const stale = client.me().catch((e: unknown) => e)
    await sleep(10)
    const fresh = await switchSessions()
    t.match(await stale, { code: 'SESSION_CHANGED', status: 401 }, when)
    t.same(storage.get(), fresh, `${when}: the new session's tokens are kept`)
    t.same(await client.me(), user)
    t.same(ended, [{ reason: 'logout' }], `${when}: no session end but the logout`)
  }
})

// Regression: accessToken() resolved after the logout with a token the refresh had just minted for the ended session.
t.test('a refresh answered after a logout hands on no token of the ended session: accessToken() fails AUTH_REQUIRED, or SESSION_CHANGED once another session is kept', async t => {
  for (const then of ['a logout', 'a logout and a new login'] as const) {
    const { service, storage, clock, ended, client } = signedInClient()
    await client.login({ identifier: 'ada', password: 'pw' })
    clock.ms = 880_000
    // The service rotates at once; its answer is slow to come back.
    service.answerDelays.set('POST /auth/refresh', 100)
    const asked = client.accessToken().catch((e: unknown) => e)
    await sleep(20)
    await client.logout()
    if (then === 'a logout and a new login') await client.login({ identifier: 'grace', password: 'pw' })
    const fresh = storage.get()
    t.match(await asked, { code: then === 'a logout' ? 'AUTH_REQUIRED' : 'SESSION_CHANGED', status: 401 }, then)
    t.equal(service.state.rotations, 1, `${then}: the refresh was carried out`)
    t.same(storage.get(), fresh, `${then}: its tokens not kept`)
    t.same(ended, [{ reason: 'logout' }], `${then}: no session end but the logout`)
  }
})

/** Memory storage whose next write, once armed, takes 600 ms and lands at its end. */
function slowWriteStorage () {
  const kept = memoryStorage()
  let slowWrite = false
  const storage: TokenStorage = {
    get: () => kept.get(),
    set: async tokens => {
      if (slowWrite) {
        slowWrite = false
        await sleep(600)
      }
      kept.set(tokens)
    },
    clear: () => kept.clear()
  }
  return { kept, storage, slowNextWrite: () => { slowWrite = true } }
}

t.test('a storage slower than storageTimeoutMs: a sign-in behind it fails STORAGE_TIMEOUT, never goes ahead of it, and the next try signs in (regressions: it hung for good; then went ahead, and the previous user\'s late write landed last)', async t => {
  const { kept, storage, slowNextWrite } = slowWriteStorage()
  const { service, clock, client } = signedInClient({ storage, storageTimeoutMs: 200 })
  await client.login({ identifier: 'ada', password: 'pw' })
  clock.ms = 880_000
  service.delays.set('POST /auth/refresh', 50)
  // A call whose refresh is answered; keeping the answer, the storage takes 600 ms to write it.
  slowNextWrite()
  const stale = client.me().catch(() => {})
  await sleep(80)
  const logins = service.count('POST /auth/login')
  await t.rejects(client.login({ identifier: 'grace', password: 'pw' }), { name: 'AuthError', code: 'STORAGE_TIMEOUT' }, 'the sign-in behind it fails after 200 ms')
  t.equal(service.count('POST /auth/login'), logins, 'before it opened a session')
  await stale
  const keptToken = async () => (await kept.get())?.refreshToken
  const previous = await keptToken()
  await client.login({ identifier: 'grace', password: 'pw' })
  const next = await keptToken()
  t.not(next, previous, 'tried again, the sign-in keeps its tokens')
  await sleep(700)
  t.equal(await keptToken(), next, 'and nothing written late replaces them')
})

t.test('a sign-in whose tokens the storage cannot take in time ends its session at the service (regression: left open, its tokens thrown away)', async t => {
  const { storage, slowNextWrite } = slowWriteStorage()
  const { service, clock, client } = signedInClient({ storage, storageTimeoutMs: 200 })
  await client.login({ identifier: 'ada', password: 'pw' })
  clock.ms = 880_000
  // The sign-in is sent while the storage is free; its answer comes once a refresh's slow write holds it.
  service.delays.set('POST /auth/login', 150)
  const signingIn = client.login({ identifier: 'grace', password: 'pw' })
  await sleep(10)
  slowNextWrite()
  const stale = client.me().catch(() => {})
  await t.rejects(signingIn, { name: 'AuthError', code: 'STORAGE_TIMEOUT' })
  t.equal(service.count('POST /auth/logout'), 1, 'the session it opened is ended')
  await stale
})

t.test('a logout, logout everywhere or account deletion answered after a new sign-in leaves the new session\'s tokens alone (regressions: each wiped them)', async t => {
  const calls = {
    logout: (client: TokenClient) => client.logout(),
    logoutAll: (client: TokenClient) => client.logoutAll(),
    deleteAccount: (client: TokenClient) => client.deleteAccount({ password: 'pw' })
  }
  for (const [name, call] of Object.entries(calls)) {
    const { service, storage, ended, client } = signedInClient()
    await client.login({ identifier: 'ada', password: 'pw' })
    for (const key of ['POST /auth/logout', 'POST /auth/logout-all', 'DELETE /users/me']) service.answerDelays.set(key, 150)
    const ending = call(client)
    await sleep(10)
    await client.login({ identifier: 'grace', password: 'pw' })
    const fresh = await storage.get()
    await ending
    t.same(await storage.get(), fresh, `${name}: the new session's tokens are kept`)
    t.same(ended, [], `${name}: and no end told of it`)
  }
})

t.test('logout everywhere and account deletion forget the tokens of the session they were made in, rotated meanwhile or not', async t => {
  for (const name of ['logoutAll', 'deleteAccount'] as const) {
    const { storage, clock, ended, client } = signedInClient()
    await client.login({ identifier: 'ada', password: 'pw' })
    // Due: the call refreshes first, and its answer comes for the rotated tokens.
    clock.ms = 880_000
    await (name === 'logoutAll' ? client.logoutAll() : client.deleteAccount({ password: 'pw' }))
    t.equal(await storage.get(), null, `${name}: nothing kept`)
    t.same(ended, [{ reason: name === 'logoutAll' ? 'logout' : 'account-deleted' }], name)
  }
})

t.test('a logout while a refresh of the same session rotates its tokens forgets the rotated tokens', async t => {
  const { service, storage, clock, ended, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  clock.ms = 880_000
  service.delays.set('POST /auth/logout', 100)
  const loggingOut = client.logout()
  await client.me().catch(() => {})
  await loggingOut
  t.equal(await storage.get(), null, 'nothing kept')
  t.same(ended, [{ reason: 'logout' }])
})

// Regression: with a slow storage, a call made before a sign-in read the new session's tokens
// and went out as it; logout everywhere ended the new user's sessions.
t.test('a call made before a sign-in that its read of the storage waited out fails SESSION_CHANGED, unsent', async t => {
  for (const call of ['updateMe', 'logoutAll'] as const) {
    const service = createStandIn()
    const kept = memoryStorage()
    let slow = false
    const storage: TokenStorage = {
      get: async () => { const tokens = kept.get(); if (slow) await sleep(150); return tokens },
      set: async tokens => { kept.set(tokens) },
      clear: async () => { kept.clear() }
    }
    const client = createTokenClient({ baseUrl, fetch: service.fetch, storage })
    await client.login({ identifier: 'ada', password: 'pw' })
    slow = true
    const made = (call === 'updateMe' ? client.updateMe({ profile: { displayName: 'made in the first session' } }) : client.logoutAll()).catch((e: unknown) => e)
    await sleep(20)
    slow = false
    await client.login({ identifier: 'grace', password: 'pw' })
    t.match(await made, { code: 'SESSION_CHANGED', status: 401 }, call)
    t.same(service.sent.map(r => `${r.method} ${r.path}`), ['POST /auth/login', 'POST /auth/login'], `${call}: nothing sent but the sign-ins`)
  }
})

// Regression: a header of the app's own of that name (analytics) signed the user out.
t.test('an AUTH_SESSION_MISMATCH (the app named another session in X-Auth-Session-Id) fails its call and ends nothing', async t => {
  const { service, storage, ended, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  const response = await client.fetch('/users/me', { headers: { 'x-auth-session-id': 'analytics-7f3a' } })
  t.equal(response.status, 401)
  t.equal((await response.json() as { code: string }).code, 'AUTH_SESSION_MISMATCH')
  t.same(ended, [], 'no session end')
  t.not(await storage.get(), null, 'the tokens are kept')
  t.same(await client.me(), user)
  t.equal(service.count('POST /auth/refresh'), 0)
})

t.test('storageTimeoutMs must be a whole number of milliseconds a timer can hold', async t => {
  for (const storageTimeoutMs of [Infinity, 0, -1, 2.5, 2 ** 31]) {
    t.throws(() => createTokenClient({ baseUrl, storageTimeoutMs }), RangeError, String(storageTimeoutMs))
  }
})

t.test('refreshTimeoutMs must be a whole number of milliseconds a timer can hold (regression: Infinity failed every refresh at once)', async t => {
  for (const refreshTimeoutMs of [Infinity, 0, -1, 2.5, 2 ** 31]) {
    t.throws(() => createTokenClient({ baseUrl, refreshTimeoutMs }), RangeError, String(refreshTimeoutMs))
  }
  t.doesNotThrow(() => createTokenClient({ baseUrl, refreshTimeoutMs: 8000 }))
})

t.test('a refresh answered 205 by something on the way is an unexpected answer, not a TypeError (regression)', async t => {
  const { service, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  service.expire()
  service.overrides.set('POST /auth/refresh', () => new Response(null, { status: 205 }))
  await t.rejects(client.me(), { name: 'AuthError', code: 'UNEXPECTED_RESPONSE' })
})

/** The body of the last request sent to `path`. */
const lastBodyTo = (service: StandIn, path: string) => JSON.parse(String(service.sent.findLast(request => request.path === path)?.init.body)) as Record<string, unknown>
const passkeyAssertion = { id: 'cred', rawId: 'cred', type: 'public-key', clientExtensionResults: {}, response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' } }

t.test('the device token: kept from the first sign-in\'s answer, then sent with every sign-in, across a logout and a session end', async t => {
  const { service, storage, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  t.same(lastBodyTo(service, '/auth/login'), { identifier: 'ada', password: 'pw' }, 'none before the first sign-in')
  const device = await storage.getDevice?.()
  t.match(device, /^[A-Za-z0-9_-]{43}$/, 'the one answered is kept')

  await client.logout()
  t.equal(await storage.get(), null, 'signed out')
  const challenge = { mfaRequired: true, mfaToken: 'mfa-opaque', methods: ['totp'], expiresIn: 300 }
  service.overrides.set('POST /auth/login', () => Response.json(challenge))
  t.same(await client.login({ identifier: 'ada', password: 'pw' }), challenge)
  t.same(lastBodyTo(service, '/auth/login'), { identifier: 'ada', password: 'pw', deviceToken: device }, 'a login after the logout sends it')
  await client.verifyMfa({ mfaToken: 'mfa-opaque', code: '123456' })
  t.same(lastBodyTo(service, '/auth/mfa/verify'), { mfaToken: 'mfa-opaque', code: '123456', deviceToken: device }, 'and so does the second step')

  service.revoke()
  await t.rejects(client.me(), { code: 'AUTH_SESSION_REVOKED' })
  t.equal(await storage.get(), null, 'the session ended')
  await client.loginWithPasskey({ response: passkeyAssertion as never })
  t.same(lastBodyTo(service, '/auth/passkeys/login/verify'), { response: passkeyAssertion, deviceToken: device }, 'a passkey sign-in after a session end sends it')
  t.equal(await storage.getDevice?.(), device, 'the same one throughout')
})

t.test('a storage without getDevice, or holding no device token, sends none and signs in as before', async t => {
  const kept = memoryStorage()
  const tokensOnly: TokenStorage = { get: () => kept.get(), set: value => kept.set(value), clear: () => kept.clear() }
  const { service, client } = signedInClient({ storage: tokensOnly })
  await client.login({ identifier: 'ada', password: 'pw' })
  await client.login({ identifier: 'ada', password: 'pw' })
  t.same(lastBodyTo(service, '/auth/login'), { identifier: 'ada', password: 'pw' }, 'without getDevice')

  const storage = memoryStorage()
  await storage.setDevice?.('not a device token')
  const other = signedInClient({ storage })
  await other.client.login({ identifier: 'ada', password: 'pw' })
  t.same(lastBodyTo(other.service, '/auth/login'), { identifier: 'ada', password: 'pw' }, 'a malformed one kept is not sent')
  t.match(await storage.getDevice?.(), /^[A-Za-z0-9_-]{43}$/, 'and the one answered replaces it')
})

t.test('an answer without a device token (an older service) or with a malformed one leaves the one kept; a new one replaces it', async t => {
  const { service, storage, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  const device = await storage.getDevice?.()
  for (const deviceToken of [undefined, null, 'short', `${'a'.repeat(42)}+`, `${'a'.repeat(43)}=`, 'a'.repeat(44)]) {
    service.overrides.set('POST /auth/login', () => Response.json({ ...tokens, user, deviceToken }))
    t.same(await client.login({ identifier: 'ada', password: 'pw' }), { mfaRequired: false, user, expiresIn: 900 }, `${String(deviceToken)}: signed in`)
    t.equal(await storage.getDevice?.(), device, `${String(deviceToken)}: the one kept stays`)
  }
  const renewed = 'b'.repeat(43)
  service.overrides.set('POST /auth/login', () => Response.json({ ...tokens, user, deviceToken: renewed }))
  await client.login({ identifier: 'ada', password: 'pw' })
  t.equal(await storage.getDevice?.(), renewed, 'one the service answers in its place is kept')
})

t.test('a storage whose getDevice or setDevice fails still signs in, without the device token', async t => {
  const kept = memoryStorage()
  const failing: TokenStorage = {
    ...kept,
    getDevice: () => { throw new Error('keychain locked') },
    setDevice: async () => { throw new Error('keychain locked') }
  }
  const { service, client } = signedInClient({ storage: failing })
  t.same(await client.login({ identifier: 'ada', password: 'pw' }), { mfaRequired: false, user, expiresIn: 900 }, 'signed in')
  await client.login({ identifier: 'ada', password: 'pw' })
  t.same(lastBodyTo(service, '/auth/login'), { identifier: 'ada', password: 'pw' }, 'signed in again, sent without one')
  t.match(await kept.get(), { refreshToken: '2.0.refresh' }, 'the tokens are kept')
  t.same(await client.me(), user, 'and used')
})

// Regression: a call sent before a reauthentication, whose token had expired, refreshed when its
// answer came and put the refreshed token in place of the reauthentication's, the only one that
// counts as fresh: the change the user had just proven themselves for was refused again.
t.test('a call that expired across a reauthentication goes out again with the reauthentication\'s token, not a refreshed one', async t => {
  const { service, storage, client } = signedInClient()
  await client.login({ identifier: 'ada', password: 'pw' })
  service.expire()
  service.overrides.set('POST /auth/reauthenticate', () => Response.json({ accessToken: 'access.1.7', tokenType: 'Bearer', expiresIn: 900 }))
  service.answerDelays.set('GET /users/me', 100)
  const expired = client.me()
  await sleep(10)
  await client.reauthenticate({ password: 'pw' })
  t.match(await storage.get(), { accessToken: 'access.1.7' }, 'the reauthentication\'s token kept')
  await expired
  t.equal(service.count('POST /auth/refresh'), 0, 'no refresh')
  t.equal(service.count('GET /users/me'), 2, 'sent again')
  t.equal(new Headers(service.sent.at(-1)?.init.headers).get('authorization'), 'Bearer access.1.7', 'with the fresh token')
  t.match(await storage.get(), { accessToken: 'access.1.7' }, 'which stays')
})

// Regression: a refresh under way across a reauthentication put its stale token in place of the
// reauthentication's when it landed last, and the reauthentication's was dropped when the
// refresh landed first (it found another refresh token kept): the next sensitive call was refused.
t.test('a refresh and a reauthentication that overlap keep the reauthentication\'s token beside the new refresh token, whichever lands last', async t => {
  for (const landsLast of ['refresh', 'reauthentication']) {
    const { service, storage, client } = signedInClient()
    await client.login({ identifier: 'ada', password: 'pw' })
    service.expire()
    service.overrides.set('POST /auth/reauthenticate', async () => {
      if (landsLast === 'reauthentication') await sleep(100)
      return Response.json({ accessToken: 'access.1.7', tokenType: 'Bearer', expiresIn: 900 })
    })
    if (landsLast === 'refresh') service.answerDelays.set('POST /auth/refresh', 100)
    const reauthentication = landsLast === 'reauthentication' ? client.reauthenticate({ password: 'pw' }) : null
    const call = client.me()
    await sleep(10)
    await (reauthentication ?? client.reauthenticate({ password: 'pw' }))
    t.same(await call, user)
    t.match(await storage.get(), { accessToken: 'access.1.7', refreshToken: '1.1.refresh' }, `${landsLast} last: both kept`)
    t.equal(service.count('POST /auth/refresh'), 1)
  }
})
