// JWKS and asymmetric access tokens: EdDSA and ES256 with a kid, verifiable by other services, and key rotation across instances.
import { createPublicKey, verify as verifySignature } from 'node:crypto'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { loginWithBody, registerAccount } from '../helpers/users.js'
import { generateKeyFiles } from '../../src/services/tokens/signing-keys.js'
import { ConfigError, loadConfig } from '../../src/config.js'

const headerOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString())

async function keysDir (t: { teardown: (fn: () => unknown) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'auth-jwks-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('HS256: the JWKS is empty; tokens carry a kid and the at+jwt type', async t => {
  const { app } = await buildTestApp(t)
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { keys: [] })
  const { accessToken } = await loginWithBody(app, await registerAccount(app))
  t.match(headerOf(accessToken), { alg: 'HS256', typ: 'at+jwt', kid: /^hs256-/ })
})

for (const alg of ['EdDSA', 'ES256'] as const) {
  t.test(`${alg}: tokens name their key, the JWKS publishes it, and another service verifies with it alone`, async t => {
    const dir = await keysDir(t)
    const { kid } = await generateKeyFiles(dir, alg)
    const { app } = await buildTestApp(t, { env: { JWT_ALGORITHM: alg, JWT_KEYS_DIR: dir } })
    const { accessToken } = await loginWithBody(app, await registerAccount(app))
    t.same(headerOf(accessToken), { alg, typ: 'at+jwt', kid })
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.match(jwks.headers['cache-control'], /^public, max-age=\d+$/)
    const [jwk] = jwks.json().keys
    t.match(jwk, { kid, alg, use: 'sig' })
    const [header, payload, signature] = accessToken.split('.') as [string, string, string]
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' })
    const valid = verifySignature(alg === 'EdDSA' ? null : 'sha256', Buffer.from(`${header}.${payload}`), alg === 'EdDSA' ? publicKey : { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))
    t.ok(valid, 'the signature checks out with the published key')
    t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })).statusCode, 200)
  })
}

t.test('rotation across instances: a token signed with the old key still verifies where a newer key signs', async t => {
  const oldDir = await keysDir(t)
  const old = await generateKeyFiles(oldDir, 'EdDSA', new Date(Date.now() - 2 * 86_400_000))
  const before = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: oldDir } })
  const account = await registerAccount(before.app)
  const oldToken = (await loginWithBody(before.app, account)).accessToken
  t.equal(headerOf(oldToken).kid, old.kid)

  const newDir = await keysDir(t)
  await cp(oldDir, newDir, { recursive: true })
  const fresh = await generateKeyFiles(newDir, 'EdDSA')
  const after = await buildTestApp(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_KEYS_DIR: newDir, JWT_KEY_PUBLISH_SECONDS: '0' } })
  const session = await after.app.inject({ method: 'GET', url: '/auth/session', headers: { authorization: `Bearer ${oldToken}` } })
  t.equal(session.statusCode, 200, 'the old key verifies')
  t.equal(headerOf((await loginWithBody(after.app, await registerAccount(after.app))).accessToken).kid, fresh.kid, 'the new key signs')
  t.same((await after.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), [old.kid, fresh.kid])

  after.clock.advance(86_400 + 1)
  const late = await after.app.inject({ method: 'GET', url: '/auth/session', headers: { authorization: `Bearer ${oldToken}` } })
  t.equal(late.statusCode, 401, 'a day after the new key took over, the old one is gone')
  t.same((await after.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid), [fresh.kid])
})

t.test('EdDSA or ES256 without a key directory is a configuration error', async t => {
  t.throws(() => loadConfig({ JWT_ALGORITHM: 'EdDSA' }), ConfigError)
  t.throws(() => loadConfig({ JWT_ALGORITHM: 'RS256' }), ConfigError)
})
