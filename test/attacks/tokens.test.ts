// Attacks on access tokens over real HTTP, with EdDSA keys: forged, confused, tampered, stale, misdirected and misused tokens.
import { createHmac } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSigner } from 'fast-jwt'
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { listen } from '../helpers/http.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'
import { generateKeyFiles } from '../../src/services/tokens/signing-keys.js'

const dir = await mkdtemp(join(tmpdir(), 'auth-attack-keys-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const { kid, privatePath, publicPath } = await generateKeyFiles(dir, 'EdDSA')
const privatePem = await readFile(privatePath, 'utf8')
const publicPem = await readFile(publicPath, 'utf8')

const { app, config, database } = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: dir, JWT_CLOCK_TOLERANCE_SECONDS: '30' } })
const http = await listen(app)
const account = await registerAccount(app)
const tokens = await loginWithBody(app, account)

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const [, realPayload, realSignature] = tokens.accessToken.split('.') as [string, string, string]
const claims = JSON.parse(Buffer.from(realPayload, 'base64url').toString()) as Record<string, unknown>
const now = Math.floor(Date.now() / 1000)

/** A token signed with the real private key, with chosen claims and header. */
function signed (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  return createSigner({ key: privatePem, algorithm: 'EdDSA', header: { alg: 'EdDSA', typ: 'at+jwt', kid, ...header } })({ ...claims, ...overrides })
}

async function assertRefused (t: Test, token: string, what: string, code = 'AUTH_TOKEN_INVALID') {
  for (const path of ['/auth/session', '/users/me']) {
    const response = await http.request(path, { headers: { authorization: `Bearer ${token}` } })
    t.equal(response.status, 401, `${what}: ${path}`)
    t.equal(response.json().code, code, `${what}: ${path} code`)
    t.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  }
  const verify = await http.request('/auth/verify', { body: { token } })
  t.equal(verify.status, 401, `${what}: /auth/verify`)
  t.equal(verify.json().code, code, `${what}: /auth/verify code, as the routes answer it`)
}

t.test('the genuine token works (the control)', async t => {
  t.equal((await http.request('/auth/session', { headers: { authorization: `Bearer ${tokens.accessToken}` } })).status, 200)
  t.equal((await http.request('/auth/session', { headers: { authorization: `Bearer ${signed()}` } })).status, 200, 'and so does one minted with the real key')
})

t.test('alg none, with or without a signature', async t => {
  const header = b64({ alg: 'none', typ: 'at+jwt', kid })
  await assertRefused(t, `${header}.${realPayload}.`, 'alg none, empty signature')
  await assertRefused(t, `${header}.${realPayload}.${realSignature}`, 'alg none, old signature')
  await assertRefused(t, `${b64({ alg: 'NONE', typ: 'at+jwt', kid })}.${realPayload}.`, 'alg NONE')
})

t.test('algorithm confusion: HS256 "signed" with the published public key', async t => {
  for (const secret of [publicPem, publicPem.trim(), Buffer.from(((await http.request('/.well-known/jwks.json')).json().keys as Array<{ x: string }>)[0]?.x ?? '', 'base64url')]) {
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid })
    const mac = createHmac('sha256', secret).update(`${header}.${realPayload}`).digest('base64url')
    await assertRefused(t, `${header}.${realPayload}.${mac}`, 'HS256 with the public key')
  }
  // Refused all the same; told to refresh, as a token of before a switch from HS256 is (below).
  const hs = createSigner({ key: 'a'.repeat(32), algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt', kid: 'hs256-anything' } })(claims)
  await assertRefused(t, hs, 'an HS256 token in EdDSA mode', 'AUTH_TOKEN_EXPIRED')
})

t.test('a tampered payload under the old signature', async t => {
  const header = tokens.accessToken.split('.')[0] as string
  await assertRefused(t, `${header}.${b64({ ...claims, role: 'admin' })}.${realSignature}`, 'role raised')
  await assertRefused(t, `${header}.${b64({ ...claims, exp: now + 10 * 86_400 })}.${realSignature}`, 'exp extended')
  // A character in the middle: every one of its bits is signature (the last one's are partly padding).
  const flipped = `${realSignature.slice(0, 10)}${realSignature[10] === 'A' ? 'B' : 'A'}${realSignature.slice(11)}`
  await assertRefused(t, `${header}.${realPayload}.${flipped}`, 'signature bits changed')
  // Regression: the last character's spare bits (an Ed25519 signature's 64 bytes leave four) could be
  // set any of 15 other ways, each spelling passing as another token; a padded spelling likewise.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(realSignature.at(-1) as string)
  for (const spare of [1, 2, 8, 15]) {
    await assertRefused(t, `${header}.${realPayload}.${realSignature.slice(0, -1)}${alphabet[last + spare] as string}`, `the signature's spare bits set (+${spare})`)
  }
  await assertRefused(t, `${header}.${realPayload}.${realSignature}==`, 'the signature padded')
})

t.test('expired, not yet valid, wrong issuer, audience or type, missing claims', async t => {
  await assertRefused(t, signed({ iat: now - 1000, exp: now - 31 }), 'expired beyond the tolerance', 'AUTH_TOKEN_EXPIRED')
  t.equal((await http.request('/auth/session', { headers: { authorization: `Bearer ${signed({ iat: now - 1000, exp: now - 10 })}` } })).status, 200,
    'expired 10 s ago is within JWT_CLOCK_TOLERANCE_SECONDS=30 (regression: the tolerance was read as milliseconds)')
  await assertRefused(t, signed({ nbf: now + 600 }), 'not yet valid')
  await assertRefused(t, signed({ iss: 'https://evil.example.com' }), 'wrong issuer')
  await assertRefused(t, signed({ aud: 'https://other-service.example.com' }), 'wrong audience')
  await assertRefused(t, signed({}, { typ: 'JWT' }), 'plain JWT type')
  await assertRefused(t, signed({ jti: undefined }), 'no jti')
  t.equal(config.JWT_CLOCK_TOLERANCE_SECONDS, 30)
})

t.test('kid: a file path, an unknown key, none, or not a string', async t => {
  // Never a key: refused, and answered as a retired key is (the client refreshes, with a refresh token a forger lacks).
  for (const bad of [publicPath, privatePath, `../../../../${publicPath}`, '/etc/passwd', 'file:///etc/passwd', 'http://127.0.0.1/jwks.json', `${kid}x`, '__proto__', 'constructor']) {
    await assertRefused(t, signed({}, { kid: bad }), `kid ${bad}`, 'AUTH_TOKEN_EXPIRED')
  }
  await assertRefused(t, signed({}, { kid: undefined }), 'no kid', 'AUTH_TOKEN_EXPIRED')
  await assertRefused(t, signed({}, { kid: 7 }), 'a numeric kid')
  await assertRefused(t, signed({}, { kid: [kid] }), 'an array kid')
})

t.test('a switch from HS256: the old access token says expired, its refresh token goes on (regression: the client was signed out)', async t => {
  const before = await buildTestApp(t, { database, env: { JWT_ALGORITHM: 'HS256' } })
  const user = await registerAccount(before.app)
  const old = await loginWithBody(before.app, user)
  for (const path of ['/users/me', '/auth/session']) {
    const refused = await http.request(path, { headers: { authorization: `Bearer ${old.accessToken}` } })
    t.same([refused.status, refused.json().code], [401, 'AUTH_TOKEN_EXPIRED'], `${path}: the code the client library refreshes on`)
  }
  const verify = await http.request('/auth/verify', { body: { token: old.accessToken } })
  t.same([verify.status, verify.json().code], [401, 'AUTH_TOKEN_EXPIRED'], '/auth/verify answers the same')
  const refreshed = await http.request('/auth/refresh', { body: { refreshToken: old.refreshToken } })
  t.equal(refreshed.status, 200, 'the refresh token did not depend on the signing key')
  const me = await http.request('/users/me', { headers: { authorization: `Bearer ${refreshed.json().accessToken as string}` } })
  t.same([me.status, me.json().email], [200, user.email], 'the same session goes on, under the new key')
})

t.test('a refresh token used as an access token, and the reverse', async t => {
  await assertRefused(t, tokens.refreshToken, 'refresh as access')
  const asRefresh = await http.request('/auth/refresh', { body: { refreshToken: tokens.accessToken } })
  // Longer than any refresh token, so refused by the schema already (400); a shorter one would be 401.
  t.match(asRefresh.json(), { statusCode: /^40[01]$/, code: /^(VALIDATION_FAILED|AUTH_REFRESH_INVALID)$/ })
  const cookie = await http.request('/auth/refresh', { method: 'POST', headers: { cookie: `__Host-refresh_token=${tokens.accessToken}`, 'sec-fetch-site': 'same-origin' } })
  t.equal(cookie.status, 401, 'nor as the refresh cookie')
  t.equal(cookie.json().code, 'AUTH_REFRESH_INVALID')
  t.equal((await http.request('/auth/refresh', { body: { refreshToken: tokens.refreshToken } })).status, 200, 'the refresh token itself still works: nothing was revoked by the attempts')
})

t.test('the token of a deleted user', async t => {
  const victim = await registerAccount(app)
  const victimTokens = await loginWithBody(app, victim)
  const bearer = { authorization: `Bearer ${victimTokens.accessToken}` }
  t.equal((await http.request('/users/me', { method: 'DELETE', headers: bearer, body: { password: victim.password } })).status, 204)
  const me = await http.request('/users/me', { headers: bearer })
  t.equal(me.status, 401)
  t.equal(me.json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await http.request('/auth/verify', { body: { token: victimTokens.accessToken } })).json().code, 'AUTH_SESSION_REVOKED')
  t.equal((await http.request('/auth/refresh', { body: { refreshToken: victimTokens.refreshToken } })).status, 401)
  t.equal((await http.request('/users/me', { method: 'PATCH', headers: bearer, body: { profile: { bio: 'back' } } })).status, 401)
  const sessions = await http.request('/auth/sessions', { headers: bearer })
  t.same([sessions.status, sessions.json().code], [401, 'AUTH_SESSION_REVOKED'], 'the session list checks that the session is live')
})
