// TOTP codes (RFC 6238 vectors, the ±1 step window), secrets sealed at rest, and recovery codes: format, normalising, hashing, matching.
import t from 'tap'
import { findRecoveryCode, hashRecoveryCode, newRecoveryCodes, normaliseRecoveryCode, RECOVERY_CODE_COUNT } from '../../src/services/mfa/recovery-codes.js'
import { matchingStep, newTotpSecret, openSealed, openSecret, otpauthUri, sealSecret, stepOf, totpCode } from '../../src/services/mfa/totp.js'
import { deriveKey } from '../../src/services/tokens/derived-keys.js'

// RFC 6238 appendix B: the SHA-1 secret is the ASCII "12345678901234567890"; its 8-digit codes end in these 6.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
const vectors: Array<[number, string]> = [[59, '287082'], [1111111109, '081804'], [1111111111, '050471'], [1234567890, '005924'], [2000000000, '279037']]

t.test('codes are RFC 6238 (SHA-1, 6 digits, 30 s)', async t => {
  for (const [seconds, code] of vectors) t.equal(totpCode(RFC_SECRET, new Date(seconds * 1000)), code, `T=${seconds}`)
})

t.test('a code is accepted one step either side and no further', async t => {
  const at = new Date(1_700_000_000_000)
  const step = stepOf(at)
  const codeOf = (offset: number) => totpCode(RFC_SECRET, new Date(at.getTime() + offset * 30_000))
  t.equal(matchingStep(RFC_SECRET, codeOf(0), at), step)
  t.equal(matchingStep(RFC_SECRET, codeOf(-1), at), step - 1, 'the previous step (clock drift, typing time)')
  t.equal(matchingStep(RFC_SECRET, codeOf(1), at), step + 1, 'the next step')
  t.equal(matchingStep(RFC_SECRET, codeOf(-2), at), null, 'two steps old')
  t.equal(matchingStep(RFC_SECRET, codeOf(2), at), null, 'two steps ahead')
  t.equal(matchingStep(RFC_SECRET, 'abcdef', at), null, 'not digits')
  t.equal(matchingStep(RFC_SECRET, codeOf(0).slice(1), at), null, 'too short')
  t.equal(matchingStep(newTotpSecret(), codeOf(0), at), null, 'another secret')
})

t.test('secrets are 160 bits, and the URI is what authenticator apps read', async t => {
  const secret = newTotpSecret()
  t.match(secret, /^[A-Z2-7]{32}$/)
  t.not(newTotpSecret(), secret)
  const uri = new URL(otpauthUri(secret, 'Example', 'ada@example.com'))
  t.equal(uri.protocol, 'otpauth:')
  t.equal(uri.host, 'totp')
  t.equal(decodeURIComponent(uri.pathname), '/Example:ada@example.com')
  t.match(Object.fromEntries(uri.searchParams), { secret, issuer: 'Example', algorithm: 'SHA1', digits: '6', period: '30' })
})

t.test('a sealed secret opens only with its key and its user', async t => {
  const key = deriveKey('a root secret of at least thirty-two bytes', 'totp-secret')
  const secret = newTotpSecret()
  const sealed = sealSecret(key, 'user-a', secret)
  t.notOk(Buffer.from(sealed).includes(Buffer.from(secret)), 'not in the clear')
  t.not(Buffer.from(sealSecret(key, 'user-a', secret)).toString('hex'), Buffer.from(sealed).toString('hex'), 'a new iv each time')
  t.equal(openSecret(key, 'user-a', sealed), secret)
  t.throws(() => openSecret(key, 'user-b', sealed), 'bound to the user')
  t.throws(() => openSecret(deriveKey('another root secret of thirty-two bytes!', 'totp-secret'), 'user-a', sealed), 'bound to the key')
  const tampered = new Uint8Array(sealed)
  tampered[tampered.length - 1] = (tampered.at(-1) ?? 0) ^ 1
  t.throws(() => openSecret(key, 'user-a', tampered), 'authenticated')
  t.not(deriveKey('same', 'totp-secret').toString('hex'), deriveKey('same', 'access-token').toString('hex'), 'a key of its own')
})

t.test('while the root secret is replaced: the current key opens, then the previous one, marked stale', async t => {
  const [current, previous, other] = ['the current root secret, thirty-two+', 'the previous root secret, thirty-two', 'a third root secret of thirty-two b'].map(root => deriveKey(root, 'totp-secret')) as [Buffer, Buffer, Buffer]
  const secret = newTotpSecret()
  t.same(openSealed({ current, previous }, 'user-a', sealSecret(current, 'user-a', secret)), { secret, stale: false })
  t.same(openSealed({ current, previous }, 'user-a', sealSecret(previous, 'user-a', secret)), { secret, stale: true })
  t.equal(openSealed({ current }, 'user-a', sealSecret(previous, 'user-a', secret)), null, 'without the previous key')
  t.equal(openSealed({ current, previous }, 'user-a', sealSecret(other, 'user-a', secret)), null, 'nor with a third')
  t.equal(openSealed({ current, previous }, 'user-b', sealSecret(previous, 'user-a', secret)), null, 'still bound to the user')
})

t.test('recovery codes: ten, 80 bits each, readable', async t => {
  const codes = newRecoveryCodes()
  t.equal(codes.length, RECOVERY_CODE_COUNT)
  for (const code of codes) t.match(code, /^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$/, '16 base32 characters (5 bits each)')
  t.equal(new Set(codes).size, codes.length)
})

t.test('recovery codes: case, spaces and dashes do not matter; only hashes are kept', async t => {
  const [code] = newRecoveryCodes() as [string]
  t.equal(normaliseRecoveryCode(` ${code.toUpperCase().replaceAll('-', ' ')} `), code.replaceAll('-', ''))
  t.equal(hashRecoveryCode(code), hashRecoveryCode(code.replaceAll('-', '').toUpperCase()))
  t.notMatch(hashRecoveryCode(code), code.replaceAll('-', ''), 'the hash is not the code')
  t.match(hashRecoveryCode(code), /^[A-Za-z0-9_-]{43}$/, 'SHA-256, base64url')
})

// Crockford's base32 decoding (https://www.crockford.com/base32.html): O is 0, I and L are 1.
t.test('recovery codes: O typed for 0, I or L for 1, are those digits; U stays wrong', async t => {
  t.equal(normaliseRecoveryCode('oOiI-lL01'), '00111101')
  const printed = '0a1b-c0d1-e0f1-g01h'
  const hashes = [hashRecoveryCode('7k2m-9xqa-c4rt-h8vp'), hashRecoveryCode(printed)]
  for (const typed of ['OA1B-C0DI-E0FL-GOlH', 'oaib cod1 eofl goih']) t.equal(findRecoveryCode(hashes, typed), 1, typed)
  t.equal(findRecoveryCode([hashRecoveryCode('vvvv-vvvv-vvvv-vvvv')], 'uuuu-uuuu-uuuu-uuuu'), -1, 'U is not read as V: Crockford keeps it out, not mapped')
  for (const code of newRecoveryCodes()) t.equal(normaliseRecoveryCode(code), code.replaceAll('-', ''), 'a printed code is left as it is')
})

t.test('recovery codes: matched against every stored hash', async t => {
  const codes = newRecoveryCodes()
  const hashes = codes.map(hashRecoveryCode)
  codes.forEach((code, index) => t.equal(findRecoveryCode(hashes, code), index))
  t.equal(findRecoveryCode(hashes, codes[3]?.toUpperCase().replaceAll('-', '') ?? ''), 3)
  t.equal(findRecoveryCode(hashes, 'not-a-code'), -1)
  t.equal(findRecoveryCode([], codes[0] ?? ''), -1)
  t.equal(findRecoveryCode(['short'], codes[0] ?? ''), -1, 'a stored value of another length never matches')
})
