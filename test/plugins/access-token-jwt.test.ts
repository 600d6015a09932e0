// Access-token checks: the verification cache never outlives a key or a token, and never vouches for another token; a key gone sends the client to refresh.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createAccessTokenJwt } from '../helpers/jwt.js'
import { createKeyRing, generateKeyFiles, hmacSigningKey, loadKeyDirectory } from '../../src/services/tokens/signing-keys.js'

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

t.test('a token verified once is refused as soon as its key retires: expired, so that its client refreshes', async t => {
  const token = jwt.sign(claims)
  t.match(jwt.verify(token), { sub: claims.sub })
  t.match(jwt.verify(token), { sub: claims.sub }, 'again, from the cache')
  now = start + 24 * HOUR + HOUR + 86_400_000 + 1000
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_EXPIRED', sessionId: claims.sid })
  now = start + HOUR
})

// Regression: a logout by a token older than its key's retirement answered 204 and ended nothing.
t.test('a token of a retired key still names its session to a logout, while the ring holds the key; never to anything else', async t => {
  const token = jwt.sign({ ...claims, jti: 'retired' })
  now = start + 24 * HOUR + HOUR + 86_400_000 + 1000
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_EXPIRED', sessionId: claims.sid }, 'retired: refused')
  t.match(jwt.verifyAllowingExpiry(token), { sid: claims.sid, jti: 'retired' }, 'to a logout, its session named')
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_EXPIRED' }, 'and refused again after')
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`
  t.throws(() => jwt.verifyAllowingExpiry(`${header}.${payload}.${flipped}`), { code: 'AUTH_TOKEN_INVALID' }, 'a bad signature under the retired key: nothing named')
  now = start + HOUR
})

t.test('a key this service no longer verifies with: AUTH_TOKEN_EXPIRED; a bad signature under a live key: AUTH_TOKEN_INVALID', async t => {
  // Regression: a switch of JWT_ALGORITHM (or a deleted key) answered AUTH_TOKEN_INVALID, which
  // signs the client library out, though the session's refresh token still worked.
  const secret = Buffer.alloc(32, 7)
  const settings = { issuer: 'https://auth.test', audience: 'https://auth.test', clockToleranceSeconds: 0 }
  const hs256 = await createAccessTokenJwt({ ring: createKeyRing({ keys: [hmacSigningKey(secret)], algorithm: 'HS256', publishSeconds: 0, retireAfterSeconds: 86_400, now: () => new Date() }), ...settings })
  const beforeSwitch = hs256.sign(claims)
  t.match(hs256.verify(beforeSwitch), { sub: claims.sub })
  t.throws(() => jwt.verify(beforeSwitch), { code: 'AUTH_TOKEN_EXPIRED' }, 'an HS256 token after the switch to EdDSA')
  const replaced = await createAccessTokenJwt({ ring: createKeyRing({ keys: [hmacSigningKey(Buffer.alloc(32, 8))], algorithm: 'HS256', publishSeconds: 0, retireAfterSeconds: 86_400, now: () => new Date() }), ...settings })
  t.throws(() => replaced.verify(beforeSwitch), { code: 'AUTH_TOKEN_INVALID' }, 'another AUTH_SECRET: its refresh token died with the secret, no refresh can help')
  const beforeKids = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url')}.${beforeSwitch.split('.').slice(1).join('.')}`
  t.throws(() => hs256.verify(beforeKids), { code: 'AUTH_TOKEN_EXPIRED' }, 'an HS256 token of before kids (its refresh token still works)')
  const [header, payload, signature] = jwt.sign(claims).split('.') as [string, string, string]
  const headed = (fields: Record<string, unknown>) => `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', ...fields })).toString('base64url')}.${payload}.${signature}`
  t.throws(() => jwt.verify(headed({ kid: '20200101T000000Z-deleted0' })), { code: 'AUTH_TOKEN_EXPIRED' }, 'a kid of no key here')
  t.throws(() => jwt.verify(headed({})), { code: 'AUTH_TOKEN_EXPIRED', sessionId: claims.sid }, 'no kid: issued before kids, its session named (only ever named back to be refused)')
  const sidless = `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: 'https://auth.test', aud: 'https://auth.test', sid: 'not a session' })).toString('base64url')}.${signature}`
  const refused = t.throws(() => jwt.verify(sidless), { code: 'AUTH_TOKEN_EXPIRED' }, 'a sid that is no session id…')
  t.notOk(refused instanceof Error && 'sessionId' in refused, '…is not named')
  const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`
  t.throws(() => jwt.verify(`${header}.${payload}.${flipped}`), { code: 'AUTH_TOKEN_INVALID' }, 'a bad signature under a live key')
  t.throws(() => jwt.verify(headed({ alg: 'HS256', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid })), { code: 'AUTH_TOKEN_INVALID' }, 'a live kid under another algorithm')
  // Not in the shape of a token of ours: no reason to refresh.
  t.throws(() => jwt.verify(headed({ kid: 'x', typ: 'JWT' })), { code: 'AUTH_TOKEN_INVALID' }, 'another type')
  t.throws(() => jwt.verify(headed({ kid: 'x', alg: 'none' })), { code: 'AUTH_TOKEN_INVALID' }, 'an algorithm we never sign with')
  t.throws(() => jwt.verify(headed({ kid: 7 })), { code: 'AUTH_TOKEN_INVALID' }, 'a kid that is no string')
  const elsewhere = await createAccessTokenJwt({ ring: createKeyRing({ keys: [hmacSigningKey(secret)], algorithm: 'HS256', publishSeconds: 0, retireAfterSeconds: 86_400, now: () => new Date() }), ...settings, issuer: 'https://other.test' })
  const foreign = elsewhere.sign(claims)
  t.throws(() => jwt.verify(foreign), { code: 'AUTH_TOKEN_INVALID' }, 'another issuer')
  t.throws(() => jwt.verify(`${header}.${payload}`), { code: 'AUTH_TOKEN_INVALID' }, 'two segments')
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
  t.throws(() => jwt.verify(token), { code: 'AUTH_TOKEN_EXPIRED', sessionId: claims.sid })
})

t.test('a token signed by our key in another shape is refused like a forgery (regression: a 500 at the first query)', async t => {
  for (const [what, changed] of [
    ['sub not a uuid', { sub: 'not-a-uuid' }],
    ['sub a number', { sub: 7 }],
    ['sid upper case', { sid: claims.sid.toUpperCase() }],
    ['role not a string', { role: ['admin'] }],
    ['email_verified not a boolean', { email_verified: 'yes' }],
    ['amr not an array', { amr: 'pwd' }],
    ['amr of numbers', { amr: [1] }],
    ['auth_time not a number', { auth_time: 'x' }],
    ['auth_time not a whole number', { auth_time: 1.5 }],
    ['client_id not a string', { client_id: 7 }],
    ['jti not a string', { jti: 7 }]
  ] as const) {
    t.throws(() => jwt.verify(jwt.sign({ ...claims, jti: what, ...changed })), { code: 'AUTH_TOKEN_INVALID' }, what)
  }
  t.match(jwt.verify(jwt.sign({ ...claims, jti: 'in shape', amr: ['pwd', 'otp', 'mfa'], auth_time: iat, client_id: 'https://auth.test' })), { sub: claims.sub }, 'the same token in our shape passes')
})
