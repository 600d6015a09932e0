// A resource server verifying the service's access tokens with its JWKS: typed claims, every check, a key
// published since (unknown kid), the keys out of reach, and the Fastify plugin around it.
import { createPublicKey } from 'node:crypto'
import { once } from 'node:events'
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT, generateKeyPair, importPKCS8, type JWTHeaderParameters } from 'jose'
import t from 'tap'
import { accessTokenAuth, createAccessTokenVerifier, type AccessTokenVerifier } from '../../packages/client/src/server/index.js'
import { generateKeyFiles } from '../../src/services/tokens/signing-keys.js'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'

async function keysDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-verifier-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const firstDir = await keysDir()
const firstKey = await generateKeyFiles(firstDir, 'EdDSA')
const service = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: firstDir } })
const issuer = service.config.PUBLIC_URL

/** The service's JWKS on a port of its own, counting fetches; `serving` switches instances (or takes it down), `body` answers a set of the test's own. */
const jwks = { serving: service.app as FastifyInstance | null, fetches: 0, body: null as string | null }
const front = createServer((_request, response) => {
  jwks.fetches++
  if (jwks.body !== null) {
    response.writeHead(200, { 'content-type': 'application/json' }).end(jwks.body)
    return
  }
  if (jwks.serving === null) {
    response.writeHead(502).end('Bad gateway')
    return
  }
  jwks.serving.inject({ method: 'GET', url: '/.well-known/jwks.json' }).then(answer => {
    response.writeHead(answer.statusCode, { 'content-type': 'application/json' }).end(answer.body)
  }, () => { response.destroy() })
}).listen(0, '127.0.0.1')
await once(front, 'listening')
t.teardown(() => { front.close() })
const baseUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`

const verifier = createAccessTokenVerifier({ baseUrl, issuer })
const account = await registerAccount(service.app)
const { accessToken } = await loginWithBody(service.app, account)

t.test('a valid token: its claims, typed, after one fetch of the keys', async t => {
  const before = jwks.fetches
  const claims = await verifier.verify(accessToken)
  t.match(claims, { sub: account.user.id, role: 'user', email_verified: false, iss: issuer, aud: issuer })
  t.equal(typeof claims.sid, 'string')
  await verifier.verify(accessToken)
  t.equal(jwks.fetches - before, 1, 'the keys are cached')
})

// Regression: the signature's last character has spare bits (four for EdDSA), and every way to
// set them passed as another token, where the service refuses all but one spelling.
t.test('one spelling per token: a signature with its spare bits set, or padded, is refused', async t => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const last = alphabet.indexOf(accessToken.at(-1) as string)
  for (const spelled of [`${accessToken.slice(0, -1)}${alphabet[last + 1] as string}`, `${accessToken.slice(0, -1)}${alphabet[last + 15] as string}`, `${accessToken}==`]) {
    await t.rejects(verifier.verify(spelled), { code: 'AUTH_TOKEN_INVALID' }, spelled.slice(-3))
    t.equal((await service.app.inject({ method: 'POST', url: '/auth/verify', payload: { token: spelled } })).json().code, 'AUTH_TOKEN_INVALID', `${spelled.slice(-3)}: as the service`)
  }
  t.match(await verifier.verify(accessToken), { sub: account.user.id }, 'the token as issued')
})

t.test('refused: expired, another audience, not an access token, tampered, not a JWT', async t => {
  service.clock.advance(-1200)
  const expired = (await loginWithBody(service.app, account)).accessToken
  service.clock.advance(1200)
  await t.rejects(verifier.verify(expired), { code: 'AUTH_TOKEN_EXPIRED', status: 401 })

  const elsewhere = createAccessTokenVerifier({ baseUrl, issuer, audience: 'https://orders.example.com' })
  await t.rejects(elsewhere.verify(accessToken), { code: 'AUTH_TOKEN_INVALID', status: 401 }, 'another audience')
  const otherIssuer = createAccessTokenVerifier({ baseUrl, issuer: 'https://evil.example.com' })
  await t.rejects(otherIssuer.verify(accessToken), { code: 'AUTH_TOKEN_INVALID' }, 'another issuer')

  // Signed with the service's own key, with every claim, but typed as a plain JWT (an ID token, say).
  const key = await importPKCS8(await readFile(firstKey.privatePath, 'utf8'), 'EdDSA')
  const claims = await verifier.verify(accessToken)
  const untyped = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', kid: firstKey.kid, typ: 'JWT' }).sign(key)
  await t.rejects(verifier.verify(untyped), { code: 'AUTH_TOKEN_INVALID' }, 'typ must be at+jwt')
  const [header, , signature] = accessToken.split('.') as [string, string, string]
  const forgedPayload = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')
  await t.rejects(verifier.verify(`${header}.${forgedPayload}.${signature}`), { code: 'AUTH_TOKEN_INVALID' }, 'tampered')
  await t.rejects(verifier.verify('not-a-jwt'), { code: 'AUTH_TOKEN_INVALID' })
})

// Regression: an hour of tolerance accepted tokens an hour expired, and a negative one made jose
// refuse every verification, taken for an outage: 503 for every token.
t.test('the options are checked when the verifier is made: a clock tolerance from 0 to 30 s, durations finite and in range', async t => {
  const refused = {
    clockToleranceSeconds: [3600, 30.5, -1, NaN, Infinity, '5'],
    cacheMaxAgeSeconds: [0, -1, NaN, Infinity],
    cooldownSeconds: [-1, NaN, Infinity],
    timeoutSeconds: [0, -1, NaN, Infinity, 2 ** 31 / 1000],
    staleKeysSeconds: [-1, NaN, Infinity]
  }
  for (const [name, values] of Object.entries(refused)) {
    for (const value of values) t.throws(() => createAccessTokenVerifier({ baseUrl, issuer, [name]: value }), RangeError, `${name}: ${String(value)}`)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(accessTokenAuth, { baseUrl, issuer, clockToleranceSeconds: -1 }) }, RangeError, 'the plugin, when registered')

  t.doesNotThrow(() => createAccessTokenVerifier({ baseUrl, issuer, clockToleranceSeconds: 0, cacheMaxAgeSeconds: 0.3, cooldownSeconds: 0, timeoutSeconds: 1.1, staleKeysSeconds: 0 }), 'the bounds, and seconds that are no whole number of milliseconds')
  // Issued 920 s ago: expired 20 s ago.
  service.clock.advance(-920)
  const justExpired = (await loginWithBody(service.app, account)).accessToken
  service.clock.advance(920)
  const tolerant = createAccessTokenVerifier({ baseUrl, issuer, clockToleranceSeconds: 30 })
  t.match(await tolerant.verify(justExpired), { sub: account.user.id }, 'within 30 s of tolerance')
  await t.rejects(verifier.verify(justExpired), { code: 'AUTH_TOKEN_EXPIRED', status: 401 }, 'without')
})

// Regression: a verifier set up against a service left at JWT_ALGORITHM=HS256 refused every
// token as "invalid", the reason only in the error's cause.
t.test('a token signed with HS256, as a service left at its default signs them, is refused saying why', async t => {
  const claims = await verifier.verify(accessToken)
  const hs256 = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'hs256' }).sign(new TextEncoder().encode('a secret only the service holds, 32+'))
  // Such a service publishes no keys.
  jwks.body = '{"keys":[]}'
  t.teardown(() => { jwks.body = null })
  const againstSecret = createAccessTokenVerifier({ baseUrl, issuer })
  await t.rejects(againstSecret.verify(hs256), { code: 'AUTH_TOKEN_INVALID', status: 401, message: /signed with HS256.*JWT_ALGORITHM=EdDSA or ES256/ })
})

// Regression: a token signed before the service moved from HS256 to public keys was
// AUTH_TOKEN_INVALID here, where the service answers AUTH_TOKEN_EXPIRED: a client passed the
// refusal on signed its user out instead of refreshing.
t.test('a token signed with HS256 before the service moved to public keys is AUTH_TOKEN_EXPIRED, as the service answers it', async t => {
  const onHs256 = await buildTestApp(t, { env: { JWT_ALGORITHM: 'HS256' } })
  const former = (await loginWithBody(onHs256.app, await registerAccount(onHs256.app))).accessToken
  t.equal((await service.app.inject({ method: 'POST', url: '/auth/verify', payload: { token: former } })).json().code, 'AUTH_TOKEN_EXPIRED', 'the service, now on EdDSA')
  await t.rejects(verifier.verify(former), { code: 'AUTH_TOKEN_EXPIRED', status: 401 })
  const fetches = jwks.fetches
  await t.rejects(createAccessTokenVerifier({ baseUrl, issuer }).verify(former), { code: 'AUTH_TOKEN_EXPIRED' }, 'a verifier that fetched no keys yet fetches them to tell')
  t.equal(jwks.fetches - fetches, 1)

  const claims = await verifier.verify(accessToken)
  const secret = new TextEncoder().encode('a secret only the service holds, 32+')
  const untyped = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret)
  const elsewhere = await new SignJWT({ ...claims, iss: 'https://evil.example.com' }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(secret)
  for (const token of [untyped, elsewhere]) await t.rejects(verifier.verify(token), { code: 'AUTH_TOKEN_INVALID' }, 'not in the service\'s shape: invalid')

  // Regression: with the service down, each such token fetched the keys again.
  jwks.serving = null
  t.teardown(() => { jwks.serving = service.app })
  const startedDuringOutage = createAccessTokenVerifier({ baseUrl, issuer, cooldownSeconds: 1 })
  const fetchesBefore = jwks.fetches
  for (let i = 0; i < 5; i++) await t.rejects(startedDuringOutage.verify(former), { code: 'SERVICE_UNAVAILABLE', status: 503 }, 'the keys cannot be fetched to tell: 503')
  t.equal(jwks.fetches - fetchesBefore, 1, 'asked once within the cooldown')
  jwks.serving = service.app
  await new Promise(resolve => setTimeout(resolve, 1100))
  await t.rejects(startedDuringOutage.verify(former), { code: 'AUTH_TOKEN_EXPIRED' }, 'after the cooldown, asked again and told')
})

t.test('a key published since: an unknown kid fetches the keys again, at most once per cooldown', async t => {
  const secondDir = await keysDir()
  await cp(firstDir, secondDir, { recursive: true })
  const secondKey = await generateKeyFiles(secondDir, 'EdDSA')
  // The service restarted with a newer key that signs at once (an instance of its own: the keys are what matters).
  const rotated = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: secondDir, JWT_KEY_PUBLISH_SECONDS: '0' } })
  jwks.serving = rotated.app
  t.teardown(() => { jwks.serving = service.app })
  const newcomer = await registerAccount(rotated.app)
  const fresh = (await loginWithBody(rotated.app, newcomer)).accessToken
  t.match(JSON.parse(Buffer.from(fresh.split('.')[0] as string, 'base64url').toString()), { kid: secondKey.kid })

  // A verifier that fetched the keys before the new one existed (no cooldown left to wait out).
  const earlier = createAccessTokenVerifier({ baseUrl, issuer, cooldownSeconds: 0 })
  jwks.serving = service.app
  await earlier.verify(accessToken)
  jwks.serving = rotated.app
  const before = jwks.fetches
  t.equal((await earlier.verify(fresh)).sub, newcomer.user.id, 'verified with the key fetched again')
  t.equal(jwks.fetches - before, 1)
  t.equal((await earlier.verify(accessToken)).sub, account.user.id, 'the older key still verifies')

  const stranger = await generateKeyFiles(await keysDir(), 'EdDSA')
  const key = await importPKCS8(await readFile(stranger.privatePath, 'utf8'), 'EdDSA')
  const claims = await earlier.verify(fresh)
  const guarded = createAccessTokenVerifier({ baseUrl, issuer })
  await guarded.verify(fresh)
  const cooling = jwks.fetches
  for (let i = 0; i < 5; i++) {
    const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', kid: `${stranger.kid}-${i}`, typ: 'at+jwt' }).sign(key)
    // In the service's shape: answered as the service answers a retired kid (refresh), never accepted.
    await t.rejects(guarded.verify(forged), { code: 'AUTH_TOKEN_EXPIRED' })
  }
  t.equal(jwks.fetches, cooling, 'forged kids do not make the server fetch again within the cooldown')
})

// Regression: a token whose key the service retired (a rotation, another JWT_ALGORITHM) was
// AUTH_TOKEN_INVALID here, AUTH_TOKEN_EXPIRED at the service: its client signed out, not refreshed.
t.test('a kid the keys no longer hold: AUTH_TOKEN_EXPIRED for a token in the service\'s shape, else AUTH_TOKEN_INVALID', async t => {
  const gone = await generateKeyFiles(await keysDir(), 'EdDSA')
  const key = await importPKCS8(await readFile(gone.privatePath, 'utf8'), 'EdDSA')
  const claims = await verifier.verify(accessToken)
  const signed = (header: { alg: string, typ: string }, extra: object = {}) =>
    new SignJWT({ ...claims, ...extra }).setProtectedHeader({ ...header, kid: gone.kid }).sign(key)
  const fresh = createAccessTokenVerifier({ baseUrl, issuer, cooldownSeconds: 0 })
  await t.rejects(fresh.verify(await signed({ alg: 'EdDSA', typ: 'at+jwt' })), { code: 'AUTH_TOKEN_EXPIRED', status: 401 })
  await t.rejects(fresh.verify(await signed({ alg: 'EdDSA', typ: 'JWT' })), { code: 'AUTH_TOKEN_INVALID' }, 'not an access token')
  await t.rejects(fresh.verify(await signed({ alg: 'EdDSA', typ: 'at+jwt' }, { iss: 'https://elsewhere.example' })), { code: 'AUTH_TOKEN_INVALID' }, 'another issuer')
  // Regression: a live kid under another algorithm, and a kid that is no string, were
  // AUTH_TOKEN_EXPIRED here (its client sent to refresh), AUTH_TOKEN_INVALID at the service.
  const es256 = await generateKeyPair('ES256')
  const confused = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: firstKey.kid }).sign(es256.privateKey)
  t.equal((await service.app.inject({ method: 'POST', url: '/auth/verify', payload: { token: confused } })).json().code, 'AUTH_TOKEN_INVALID', 'a live kid under ES256: the service')
  await t.rejects(fresh.verify(confused), { code: 'AUTH_TOKEN_INVALID' }, 'a live kid under ES256: the verifier answers as the service')
  for (const kid of [5, { a: 1 }, ['x'], null]) {
    const odd = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid } as unknown as JWTHeaderParameters).sign(key)
    const atService = await service.app.inject({ method: 'POST', url: '/auth/verify', payload: { token: odd } })
    t.equal(atService.json().code, 'AUTH_TOKEN_INVALID', `kid ${JSON.stringify(kid)}: the service`)
    await t.rejects(fresh.verify(odd), { code: 'AUTH_TOKEN_INVALID' }, `kid ${JSON.stringify(kid)}: the verifier answers as the service`)
  }
})

t.test('the keys out of reach: 503 SERVICE_UNAVAILABLE, not a refusal of the token', async t => {
  jwks.serving = null
  t.teardown(() => { jwks.serving = service.app })
  await t.rejects(createAccessTokenVerifier({ baseUrl, issuer }).verify(accessToken), { code: 'SERVICE_UNAVAILABLE', status: 503 })
  const nowhere = createAccessTokenVerifier({ baseUrl: 'http://127.0.0.1:9', issuer, timeoutSeconds: 1 })
  await t.rejects(nowhere.verify(accessToken), { code: 'SERVICE_UNAVAILABLE', status: 503 })
})

// Regression: with no keys kept (a server started during an outage, or past staleKeysSeconds),
// every verification fetched the keys again: the resource server's traffic, one for one, on a
// service already failing.
t.test('the keys out of reach with none kept: 503, and the service asked once per cooldown', async t => {
  jwks.serving = null
  t.teardown(() => { jwks.serving = service.app })
  const cold = createAccessTokenVerifier({ baseUrl, issuer, cooldownSeconds: 0.5 })
  const fetches = jwks.fetches
  const atOnce = await Promise.allSettled(Array.from({ length: 20 }, () => cold.verify(accessToken)))
  t.same(atOnce.map(answer => answer.status === 'rejected' && (answer.reason as { code?: string }).code), Array(20).fill('SERVICE_UNAVAILABLE'))
  for (let i = 0; i < 20; i++) await t.rejects(cold.verify(accessToken), { code: 'SERVICE_UNAVAILABLE', status: 503 })
  t.equal(jwks.fetches, fetches + 1, 'one fetch for forty verifications')
  await new Promise(resolve => setTimeout(resolve, 600))
  jwks.serving = service.app
  t.match(await cold.verify(accessToken), { sub: account.user.id }, 'asked again once the cooldown is over')
})

t.test('the keys out of reach once the cache is stale: the last ones fetched go on verifying for staleKeysSeconds from that fetch, the service asked once per cooldown, then 503 (regression: 503 as soon as the cache was stale)', async t => {
  const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
  const outlasting = createAccessTokenVerifier({ baseUrl, issuer, cacheMaxAgeSeconds: 0.5, staleKeysSeconds: 1.5, cooldownSeconds: 0.2 })
  const strict = createAccessTokenVerifier({ baseUrl, issuer, cacheMaxAgeSeconds: 0.5, staleKeysSeconds: 0 })
  t.match(await outlasting.verify(accessToken), { sub: account.user.id })
  t.match(await strict.verify(accessToken), { sub: account.user.id })
  await sleep(400)
  t.match(await outlasting.verify(accessToken), { sub: account.user.id }, 'verified from the cache, not fetched')
  jwks.serving = null
  t.teardown(() => { jwks.serving = service.app })
  await sleep(300)
  const fetches = jwks.fetches
  t.match(await outlasting.verify(accessToken), { sub: account.user.id }, 'the last keys verify')
  t.match(await outlasting.verify(accessToken), { sub: account.user.id })
  t.equal(jwks.fetches, fetches + 1, 'the service asked once, not again within the cooldown')
  await t.rejects(strict.verify(accessToken), { code: 'SERVICE_UNAVAILABLE', status: 503 }, 'staleKeysSeconds 0: 503 once the cache is stale')
  await sleep(1500)
  await t.rejects(outlasting.verify(accessToken), { code: 'SERVICE_UNAVAILABLE', status: 503 }, 'past cacheMaxAgeSeconds + staleKeysSeconds from the fetch, not from the last verification: 503')
  jwks.serving = service.app
  await sleep(250)
  t.match(await outlasting.verify(accessToken), { sub: account.user.id }, 'and fetched again once the service is back, past the cooldown')
})

t.test('a key the last successful fetch no longer held never verifies again, an outage after it or not (regression: the keys kept were those of the last verification)', async t => {
  const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
  const quick = createAccessTokenVerifier({ baseUrl, issuer, cacheMaxAgeSeconds: 0.3, staleKeysSeconds: 60, cooldownSeconds: 0 })
  t.match(await quick.verify(accessToken), { sub: account.user.id })
  t.teardown(() => { jwks.body = null; jwks.serving = service.app })
  const stranger = await generateKeyFiles(await keysDir(), 'EdDSA')
  jwks.body = JSON.stringify({ keys: [{ ...createPublicKey(await readFile(stranger.publicPath, 'utf8')).export({ format: 'jwk' }), kid: stranger.kid, alg: 'EdDSA', use: 'sig' }] })
  await sleep(350)
  await t.rejects(quick.verify(accessToken), { code: 'AUTH_TOKEN_EXPIRED' }, 'retired: the set fetched no longer holds its key')
  jwks.body = null
  jwks.serving = null
  await sleep(350)
  await t.rejects(quick.verify(accessToken), { code: 'AUTH_TOKEN_EXPIRED' }, 'nor in an outage: the keys kept are the last fetched')
})

async function resourceServer (options: Parameters<typeof accessTokenAuth>[1]): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(accessTokenAuth, options)
  app.get('/orders', { onRequest: app.requireAccessToken }, async request => ({ owner: request.accessClaims?.sub }))
  app.get('/public', async request => ({ claims: request.accessClaims }))
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('the Fastify plugin: only a valid token passes; refusals in the service\'s error shape', async t => {
  const orders = await resourceServer({ verifier })
  const get = (authorization?: string) => orders.inject({ method: 'GET', url: '/orders', headers: authorization === undefined ? {} : { authorization } })

  const ok = await get(`Bearer ${accessToken}`)
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { owner: account.user.id })
  t.same((await orders.inject({ method: 'GET', url: '/public' })).json(), { claims: null }, 'routes without the hook are untouched')
  // Regression: one space only here, where the service takes one or more.
  t.equal((await get(`Bearer  ${accessToken}`)).statusCode, 200, 'spaces after Bearer, as the service takes them')

  const none = await get()
  t.equal(none.statusCode, 401)
  t.same(none.json(), { statusCode: 401, code: 'AUTH_REQUIRED', error: 'Unauthorized', message: 'Authentication is required' })
  t.equal(none.headers['www-authenticate'], 'Bearer')
  for (const authorization of ['Bearer not-a-jwt', `Basic ${accessToken}`, `Bearer ${accessToken} extra`]) {
    const refused = await get(authorization)
    t.equal(refused.statusCode, 401, authorization.slice(0, 12))
    t.equal(refused.json().code, 'AUTH_TOKEN_INVALID')
    t.equal(refused.headers['www-authenticate'], 'Bearer error="invalid_token"')
  }
  service.clock.advance(-1200)
  const expired = (await loginWithBody(service.app, account)).accessToken
  service.clock.advance(1200)
  t.equal((await get(`Bearer ${expired}`)).json().code, 'AUTH_TOKEN_EXPIRED', 'the code a client refreshes on')
})

t.test('the Fastify plugin builds its verifier from options; keys out of reach answer 503', async t => {
  const orders = await resourceServer({ baseUrl, issuer })
  t.equal((await orders.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${accessToken}` } })).statusCode, 200)
  jwks.serving = null
  t.teardown(() => { jwks.serving = service.app })
  const cold: AccessTokenVerifier = createAccessTokenVerifier({ baseUrl, issuer })
  const down = await resourceServer({ verifier: cold })
  const response = await down.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(response.headers['www-authenticate'], undefined)
})
