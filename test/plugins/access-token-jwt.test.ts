// Access-token checks: the verification cache never outlives a key or a token, and never vouches for another token.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createAccessTokenJwt } from '../helpers/jwt.js'
import { createKeyRing, generateKeyFiles, loadKeyDirectory } from '../../src/services/tokens/signing-keys.js'

const HOUR = 3600_000
const dir = await mkdtemp(join(tmpdir(), 'auth-jwt-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

// The old key signs until the new one has been published for an hour, then verifies for a day.
const start = Date.now() - 30 * HOUR
await generateKeyFiles(dir, 'EdDSA', new Date(start))
await generateKeyFiles(dir, 'EdDSA', new Date(start + 24 * HOUR))
let now = start + HOUR
const ring = createKeyRing({ keys: (await loadKeyDirectory(dir)).keys, algorithm: 'EdDSA', publishSeconds: 3600, retireAfterSeconds: 86_400, now: () => new Date(now) })
const jwt = await createAccessTokenJwt({ ring, issuer: 'https://auth.test', audience: 'https://auth.test', clockToleranceSeconds: 0 })

const iat = Math.floor(Date.now() / 1000)
const claims = { sub: 'b8a6e5b2-1d1f-4c55-9d55-6b1f4f9f2a10', sid: '0c3c4d6e-0f5e-4b8a-9f1e-2f4a5b6c7d8e', role: 'user', email_verified: true, jti: 'j1', iat, exp: iat + 900 }

t.test('a token verified once is refused as soon as its key retires', async t => {
  const token = jwt.sign(claims)
  t.match(jwt.verify(token), { sub: claims.sub })
  t.match(jwt.verify(token), { sub: claims.sub }, 'again, from the cache')
  now = start + 24 * HOUR + HOUR + 86_400_000 + 1000
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_INVALID' })
  now = start + HOUR
})

t.test('a verified token vouches for nothing else: another payload under its signature is refused', async t => {
  const token = jwt.sign(claims)
  t.match(jwt.verify(token), { role: 'user' })
  const [header, , signature] = token.split('.')
  const forged = [header, Buffer.from(JSON.stringify({ ...claims, role: 'admin', iss: 'https://auth.test', aud: 'https://auth.test' })).toString('base64url'), signature].join('.')
  t.throws(() => jwt.verify(forged), { code: 'AUTH_TOKEN_INVALID' })
})

t.test('a token verified once is refused once it expires', async t => {
  const issuedAt = Math.floor(Date.now() / 1000)
  const token = jwt.sign({ ...claims, jti: 'short', iat: issuedAt, exp: issuedAt + 1 })
  t.match(jwt.verify(token), { jti: 'short' })
  await new Promise(resolve => setTimeout(resolve, (issuedAt + 1) * 1000 - Date.now() + 50))
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_EXPIRED' })
})
