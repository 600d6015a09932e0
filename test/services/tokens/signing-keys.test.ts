// The key directory and the rotation timeline: which key signs, which verify, what the JWKS shows, and refused files.
import { mkdir, mkdtemp, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createKeyRing, generateKeyFiles, hmacSigningKey, loadKeyDirectory, loadSigningKeys } from '../../../src/services/tokens/signing-keys.js'

const HOUR = 3600_000
/** The largest key file read (a PEM key is a few hundred bytes). */
const MAX_KEY_FILE_BYTES = 64 * 1024
const DAY = 24 * HOUR

async function tempDir (t: { teardown: (fn: () => unknown) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'auth-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('generated files: a 0600 private key and a public key, named by a kid that starts with the creation time', async t => {
  const dir = join(await tempDir(t), 'nested')
  const created = new Date('2026-01-02T03:04:05.678Z')
  const { kid, privatePath, publicPath } = await generateKeyFiles(dir, 'EdDSA', created)
  t.match(kid, /^20260102T030405Z-[0-9a-f]{8}$/)
  t.equal((await stat(privatePath)).mode & 0o777, 0o600)
  t.equal((await stat(dir)).mode & 0o777, 0o700)
  t.ok((await stat(publicPath)).isFile())
  const { keys, warnings } = await loadKeyDirectory(dir)
  t.same(warnings, [])
  t.equal(keys.length, 1)
  t.match(keys[0], { kid, alg: 'EdDSA', createdAt: new Date('2026-01-02T03:04:05Z'), jwk: { kty: 'OKP', crv: 'Ed25519', kid, alg: 'EdDSA', use: 'sig' } })
  t.notOk(JSON.stringify(keys[0]?.jwk).includes('"d"'), 'the JWK has no private part')
  const es = await generateKeyFiles(dir, 'ES256', created)
  const again = await loadKeyDirectory(dir)
  t.match(again.keys.find(key => key.kid === es.kid), { alg: 'ES256', jwk: { kty: 'EC', crv: 'P-256' } })
})

t.test('refused: stray files, kids without a time, foreign key types, mismatched pairs, an empty directory; warned: a readable private key', async t => {
  const dir = await tempDir(t)
  await t.rejects(loadSigningKeys('EdDSA', dir, Buffer.alloc(32)), /holds no key/, 'empty')
  await t.rejects(loadSigningKeys('EdDSA', undefined, Buffer.alloc(32)), /JWT_KEYS_DIR is required/)
  await t.rejects(loadKeyDirectory(join(dir, 'missing')), /JWT_KEYS_DIR/)
  await writeFile(join(dir, 'notes.txt'), 'x')
  await t.rejects(loadKeyDirectory(dir), /not a key file/)
  await rm(join(dir, 'notes.txt'))
  await writeFile(join(dir, '.hidden'), 'skipped')
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
  await writeFile(join(dir, 'mykey.key.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  await t.rejects(loadKeyDirectory(dir), /must start with its creation time/)
  await rm(join(dir, 'mykey.key.pem'))
  await writeFile(join(dir, '20260101T000000Z-rsa.key.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  await t.rejects(loadKeyDirectory(dir), /only Ed25519 \(EdDSA\) and P-256 \(ES256\)/)
  await rm(join(dir, '20260101T000000Z-rsa.key.pem'))
  await writeFile(join(dir, '20260101T000000Z-bad.key.pem'), 'not a key')
  await t.rejects(loadKeyDirectory(dir), /not a PEM key/)
  await rm(join(dir, '20260101T000000Z-bad.key.pem'))
  const { kid, privatePath } = await generateKeyFiles(dir, 'EdDSA')
  await writeFile(join(dir, `${kid}.pub.pem`), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }))
  await t.rejects(loadKeyDirectory(dir), /not the public key/)
  await rm(join(dir, `${kid}.pub.pem`))
  await chmod(privatePath, 0o644)
  t.match((await loadKeyDirectory(dir)).warnings, [/readable by other users/])
})

const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
/** An error message that starts with `path`, then says `rest`. */
const about = (path: string, rest: string) => ({ message: new RegExp(`^${literally(path)}: ${rest}`) })

t.test('refused, naming the file: a private key under a public key\'s name, a directory or an oversized file named like a key; warned: a key directory others can write to', async t => {
  const dir = await tempDir(t)
  await generateKeyFiles(dir, 'EdDSA')
  t.same((await loadKeyDirectory(dir)).warnings, [])

  // createPublicKey would derive the public key from it, and the file is no secret (0644).
  const leaked = join(dir, '20260101T000000Z-leaked.pub.pem')
  for (const privateKey of [generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' })]) {
    await writeFile(leaked, privateKey, { mode: 0o644 })
    await t.rejects(loadKeyDirectory(dir), about(leaked, 'holds a private key.*Rename it 20260101T000000Z-leaked\\.key\\.pem and chmod 600 it'))
    await rm(leaked)
  }

  const folder = join(dir, '20260101T000000Z-folder.pub.pem')
  await mkdir(folder)
  await t.rejects(loadKeyDirectory(dir), about(folder, 'not a regular file'))
  await rm(folder, { recursive: true })

  // Refused by its size, not read: a valid key with padding past the limit is refused too.
  const huge = join(dir, '20260101T000000Z-huge.pub.pem')
  const publicPem = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })
  await writeFile(huge, publicPem + '\n'.repeat(MAX_KEY_FILE_BYTES))
  await t.rejects(loadKeyDirectory(dir), about(huge, 'larger than 64 KiB'))
  await writeFile(huge, publicPem)
  t.equal((await loadKeyDirectory(dir)).keys.length, 2, 'a key file of a normal size loads')

  await chmod(dir, 0o777)
  t.match((await loadKeyDirectory(dir)).warnings, [new RegExp(`^JWT_KEYS_DIR ${literally(dir)}: writable by other users`)])
  await chmod(dir, 0o770)
  t.equal((await loadKeyDirectory(dir)).warnings.length, 1, 'by its group too')
  await chmod(dir, 0o755)
  t.same((await loadKeyDirectory(dir)).warnings, [])
})

t.test('rotation: a new key is published first, then signs; the old one verifies until its tokens have expired, then drops out', async t => {
  const dir = await tempDir(t)
  const start = Date.parse('2026-03-01T00:00:00Z')
  const old = await generateKeyFiles(dir, 'EdDSA', new Date(start))
  const fresh = await generateKeyFiles(dir, 'EdDSA', new Date(start + 10 * DAY))
  let now = start + 10 * DAY + 1000
  const ring = createKeyRing({ keys: (await loadKeyDirectory(dir)).keys, algorithm: 'EdDSA', publishSeconds: 3600, retireAfterSeconds: 86_400, now: () => new Date(now) })
  const kids = () => ring.jwks().keys.map(key => key.kid)

  t.equal(ring.signingKey().kid, old.kid, 'the new key is not signing yet')
  t.same(kids(), [old.kid, fresh.kid], 'but it is published already')
  now += HOUR
  t.equal(ring.signingKey().kid, fresh.kid, 'it signs once published long enough')
  t.ok(ring.verificationKey(old.kid), 'the old key still verifies')
  now += DAY - 2000
  t.ok(ring.verificationKey(old.kid), 'until the longest access token it signed has expired')
  now += 1000
  t.equal(ring.verificationKey(old.kid), undefined, 'then it drops out')
  t.same(kids(), [fresh.kid], 'of the JWKS too')
  t.equal(ring.verificationKey('../../etc/passwd'), undefined, 'a kid is only ever looked up in the map')
  t.equal(ring.verificationKey(42), undefined)
})

t.test('a fresh install signs at once with its only key; keys of another algorithm or without a private part never sign', async t => {
  const dir = await tempDir(t)
  const es = await generateKeyFiles(dir, 'ES256')
  const ed = await generateKeyFiles(dir, 'EdDSA')
  await rm(ed.privatePath)
  await t.rejects(async () => createKeyRing({ keys: (await loadKeyDirectory(dir)).keys, algorithm: 'EdDSA', publishSeconds: 3600, retireAfterSeconds: 60, now: () => new Date() }), /no private key for EdDSA/)
  const ring = createKeyRing({ keys: (await loadKeyDirectory(dir)).keys, algorithm: 'ES256', publishSeconds: 3600, retireAfterSeconds: 60, now: () => new Date() })
  t.equal(ring.signingKey().kid, es.kid)
  t.equal(ring.verificationKey(ed.kid)?.alg, 'EdDSA', 'a public-only key still verifies')
})

t.test('HS256: one key with a derived kid, never published', async t => {
  const key = hmacSigningKey(Buffer.alloc(32, 7))
  t.match(key.kid, /^hs256-[A-Za-z0-9_-]{16}$/)
  const ring = createKeyRing({ keys: [key], algorithm: 'HS256', publishSeconds: 0, retireAfterSeconds: 60, now: () => new Date() })
  t.same(ring.jwks(), { keys: [] })
  t.equal(ring.signingKey(), key)
})
