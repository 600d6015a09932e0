// Access-token signing keys: the HS256 key, or the key pairs of JWT_KEYS_DIR with their kid, rotation timeline and JWKS.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { constants } from 'node:fs'
import { access, mkdir, open, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export type JwtAlgorithm = 'HS256' | 'EdDSA' | 'ES256'
export type AsymmetricAlgorithm = Exclude<JwtAlgorithm, 'HS256'>

export interface SigningKey {
  kid: string
  /** The one algorithm this key is used with (RFC 8725 3.1): a token naming another is refused. */
  alg: JwtAlgorithm
  createdAt: Date
  /** PEM private key, or the HS256 secret; null when only the public key is kept (verify only). */
  signKey: string | Buffer | null
  /** PEM public key, or the HS256 secret. */
  verifyKey: string | Buffer
  /** The public key as a JWK (RFC 7517); null for HS256, which is never published. */
  jwk: PublicJwk | null
}

export interface PublicJwk {
  kty: string
  crv: string
  x: string
  y?: string
  kid: string
  alg: string
  use: 'sig'
}

export class KeyError extends Error {
  override name = 'KeyError'
}

// `20261121T183000Z-3f9a1c2b`: the creation time (UTC) first, so that names sort by age.
const KID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[A-Za-z0-9_-]{1,32}$/
const KEY_FILE = /^(?<kid>[A-Za-z0-9_-]+)\.(?<part>key|pub)\.pem$/

/** The HS256 key, with a kid derived from it (a hash: it reveals nothing of the key). */
export function hmacSigningKey (secret: Buffer): SigningKey {
  const kid = `hs256-${createHash('sha256').update('kid').update(secret).digest('base64url').slice(0, 16)}`
  return { kid, alg: 'HS256', createdAt: new Date(0), signKey: secret, verifyKey: secret, jwk: null }
}

function createdAtOf (kid: string): Date | null {
  const m = KID.exec(kid)
  if (m === null) return null
  const [, year, month, day, hour, minute, second] = m.map(Number) as number[]
  const date = new Date(Date.UTC(year as number, (month as number) - 1, day, hour, minute, second))
  return Number.isNaN(date.getTime()) ? null : date
}

function algorithmOf (key: KeyObject, file: string): AsymmetricAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new KeyError(`${file}: only Ed25519 (EdDSA) and P-256 (ES256) keys are supported`)
}

function publicJwkOf (key: KeyObject, kid: string, alg: AsymmetricAlgorithm): PublicJwk {
  const { kty, crv, x, y } = key.export({ format: 'jwk' })
  if (kty === undefined || crv === undefined || x === undefined) throw new KeyError(`${kid}: cannot export the public key`)
  return { kty, crv, x, ...(y === undefined ? {} : { y }), kid, alg, use: 'sig' }
}

export interface LoadedKeys {
  keys: SigningKey[]
  /** Things an operator should fix that do not stop the start (a private key readable by others, a directory others can write to). */
  warnings: string[]
}

/** A PEM key is a few hundred bytes: anything much larger is not one, and is not read into memory to find that out. */
const MAX_KEY_FILE_BYTES = 64 * 1024

const PRIVATE_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/** The text of a key file, and its mode: a regular file of at most MAX_KEY_FILE_BYTES, else a KeyError naming it. */
async function readKeyFile (file: string): Promise<{ pem: string, mode: number }> {
  // Checked by path before opening: opening a FIFO would wait for a writer.
  const info = await stat(file).catch((error: Error) => { throw new KeyError(`${file}: ${error.message}`) })
  if (!info.isFile()) throw new KeyError(`${file}: not a regular file (a key file holds one PEM key): move it out of the key directory`)
  const tooLarge = () => new KeyError(`${file}: larger than ${MAX_KEY_FILE_BYTES / 1024} KiB, so not a PEM key (a few hundred bytes): move it out of the key directory`)
  if (info.size > MAX_KEY_FILE_BYTES) throw tooLarge()
  const handle = await open(file, 'r').catch((error: Error) => { throw new KeyError(`${file}: ${error.message}`) })
  try {
    // At most one byte more than allowed, whatever the file became since the stat.
    const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > MAX_KEY_FILE_BYTES) throw tooLarge()
    return { pem: buffer.toString('utf8', 0, length), mode: info.mode }
  } catch (error) {
    throw error instanceof KeyError ? error : new KeyError(`${file}: ${(error as Error).message}`)
  } finally {
    await handle.close()
  }
}

/**
 * Reads every `<kid>.key.pem` (PKCS#8 private key) and `<kid>.pub.pem` (SPKI public key) of
 * `dir`. The kid is the file name, never anything a token says; hidden files are skipped,
 * anything else is an error, so a misnamed key never goes unnoticed.
 */
/** Whether `dir` is on a file system mounted read-only (writing there fails with EROFS). */
async function onReadOnlyMount (dir: string): Promise<boolean> {
  return await access(dir, constants.W_OK).then(() => false, (error: NodeJS.ErrnoException) => error.code === 'EROFS')
}

export async function loadKeyDirectory (dir: string): Promise<LoadedKeys> {
  let names: string[]
  let dirMode: number
  try {
    names = (await readdir(dir)).filter(name => !name.startsWith('.')).sort()
    dirMode = (await stat(dir)).mode
  } catch (error) {
    throw new KeyError(`JWT_KEYS_DIR ${dir}: ${(error as Error).message}`)
  }
  const parts = new Map<string, { private?: KeyObject, public?: KeyObject }>()
  const warnings: string[] = []
  // Whoever can write to the directory can add a key the service trusts, publishes, and (a newer
  // private key) signs with. Warned, not refused (in production either): a refusal would stop
  // every instance at its next restart; the warning is logged at each start, as a readable
  // private key's is. Not on a read-only mount (Kubernetes mounts secrets so, at mode 1777),
  // where the mode bits say writable and nobody can write.
  if ((dirMode & 0o022) !== 0 && !await onReadOnlyMount(dir)) warnings.push(`JWT_KEYS_DIR ${dir}: writable by other users, who could add a key the service would trust and publish (chmod go-w it)`)
  for (const name of names) {
    const match = KEY_FILE.exec(name)
    const kid = match?.groups?.kid
    if (kid === undefined) throw new KeyError(`${join(dir, name)}: not a key file (<kid>.key.pem or <kid>.pub.pem)`)
    if (createdAtOf(kid) === null) throw new KeyError(`${join(dir, name)}: the kid must start with its creation time, like 20261121T183000Z-3f9a1c2b (npm run keys:generate)`)
    const file = join(dir, name)
    const { pem, mode } = await readKeyFile(file)
    const entry = parts.get(kid) ?? {}
    const isPrivate = match?.groups?.part === 'key'
    // createPublicKey takes a private key too (it derives the public one): a private key under a
    // public key's name, published and mode 0644, would otherwise be used without a word.
    if (!isPrivate && PRIVATE_PEM.test(pem)) {
      throw new KeyError(`${file}: holds a private key, where only the public key belongs (a .pub.pem file is meant to be shared). Rename it ${kid}.key.pem and chmod 600 it, or delete it if ${kid}.key.pem holds that key already; if other users could read it, treat the key as leaked and replace it (npm run keys:generate)`)
    }
    try {
      if (isPrivate) {
        entry.private = createPrivateKey(pem)
      } else {
        entry.public = createPublicKey(pem)
      }
    } catch (error) {
      throw new KeyError(`${file}: not a PEM key (${(error as Error).message})`)
    }
    if (isPrivate && (mode & 0o077) !== 0) warnings.push(`${file}: the private key is readable by other users (chmod 600 it)`)
    parts.set(kid, entry)
  }
  if (parts.size === 0) throw new KeyError(`JWT_KEYS_DIR ${dir} holds no key: make one with npm run keys:generate`)
  const keys = [...parts].map(([kid, { private: privateKey, public: given }]) => {
    const publicKey = privateKey === undefined ? given as KeyObject : createPublicKey(privateKey)
    if (given !== undefined && privateKey !== undefined && !given.equals(publicKey)) throw new KeyError(`${kid}: the .pub.pem file is not the public key of the .key.pem file`)
    const alg = algorithmOf(publicKey, kid)
    return {
      kid,
      alg,
      createdAt: createdAtOf(kid) as Date,
      signKey: privateKey === undefined ? null : privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      verifyKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      jwk: publicJwkOf(publicKey, kid, alg)
    }
  })
  return { keys, warnings }
}

/**
 * Makes a key pair in `dir` (created 0700 if missing): `<kid>.key.pem` with mode 0600 and
 * `<kid>.pub.pem`. Never overwrites a file. Returns the kid and the two paths.
 */
export async function generateKeyFiles (dir: string, alg: AsymmetricAlgorithm, now = new Date()) {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const kid = `${stamp}-${randomBytes(4).toString('hex')}`
  const { privateKey, publicKey } = alg === 'EdDSA'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const privatePath = join(dir, `${kid}.key.pem`)
  const publicPath = join(dir, `${kid}.pub.pem`)
  await writeFile(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
  await writeFile(publicPath, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644, flag: 'wx' })
  return { kid, privatePath, publicPath }
}

/**
 * The keys in force: with HS256 the one key derived from AUTH_SECRET, with EdDSA or ES256
 * the files of JWT_KEYS_DIR (never both: an HS256 token is never accepted alongside
 * public keys, so a public key cannot be used as an HMAC secret).
 */
export async function loadSigningKeys (algorithm: JwtAlgorithm, keysDir: string | undefined, hmacKey: Buffer): Promise<LoadedKeys> {
  if (algorithm === 'HS256') return { keys: [hmacSigningKey(hmacKey)], warnings: [] }
  if (keysDir === undefined) throw new KeyError(`JWT_KEYS_DIR is required with ${algorithm}`)
  return loadKeyDirectory(keysDir)
}

export interface KeyRingSettings {
  keys: SigningKey[]
  /** JWT_ALGORITHM: only keys of this algorithm sign. */
  algorithm: JwtAlgorithm
  /** A new key is published (JWKS, every instance) this long before it signs. */
  publishSeconds: number
  /** How long a key keeps verifying after it stopped signing: the longest access token life. */
  retireAfterSeconds: number
  now: () => Date
}

/**
 * The rotation timeline, computed from each key's creation time and the clock, so every
 * instance agrees without talking to the others. A key signs from `publishSeconds` after
 * its creation until the next key starts signing (a fresh install's only key signs at
 * once); it keeps verifying until the longest access token it may have signed has
 * expired, then drops out of verification and of the JWKS.
 */
export function createKeyRing ({ keys, algorithm, publishSeconds, retireAfterSeconds, now }: KeyRingSettings) {
  const ordered = [...keys].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.kid.localeCompare(b.kid))
  const signers = ordered.filter(key => key.alg === algorithm && key.signKey !== null)
  if (signers.length === 0) throw new KeyError(`no private key for ${algorithm}: make one with npm run keys:generate`)
  const activeFrom = (key: SigningKey) => key.createdAt.getTime() + publishSeconds * 1000
  // When each key stopped (or will stop) signing: when the next signer became active.
  const stopsSigning = new Map(ordered.map(key => {
    const next = signers.find(signer => signer.createdAt > key.createdAt || (signer.createdAt.getTime() === key.createdAt.getTime() && signer.kid > key.kid))
    return [key.kid, next === undefined ? Number.POSITIVE_INFINITY : activeFrom(next)]
  }))
  const byKid = new Map(ordered.map(key => [key.kid, key]))
  const isLive = (key: SigningKey, at: number) => at < (stopsSigning.get(key.kid) ?? 0) + retireAfterSeconds * 1000

  return {
    /** Every key the ring was made with, live or not, oldest first. */
    all: (): readonly SigningKey[] => ordered,

    /** The key that signs now: the newest active one, else (fresh install) the oldest. */
    signingKey (): SigningKey {
      const at = now().getTime()
      return signers.findLast(key => activeFrom(key) <= at) ?? signers[0] as SigningKey
    },

    /** The key a token's `kid` names, from this fixed map only, while it still verifies. */
    verificationKey (kid: unknown): SigningKey | undefined {
      if (typeof kid !== 'string') return undefined
      const key = byKid.get(kid)
      return key !== undefined && isLive(key, now().getTime()) ? key : undefined
    },

    /** The key a token's `kid` names, from this fixed map only, retired or not: only to end the session a token names. */
    heldKey (kid: unknown): SigningKey | undefined {
      return typeof kid === 'string' ? byKid.get(kid) : undefined
    },

    /** Public keys that verify now, or will sign soon (RFC 7517); empty with HS256. */
    jwks (): { keys: PublicJwk[] } {
      const at = now().getTime()
      return { keys: ordered.filter(key => key.jwk !== null && isLive(key, at)).map(key => key.jwk as PublicJwk) }
    }
  }
}

export type KeyRing = ReturnType<typeof createKeyRing>
